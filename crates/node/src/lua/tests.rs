//! The script environment without a server: scripts run straight in an EVAL interpreter, their
//! results compared with what redis-server 7.0.15 returned for the same script (each body runs
//! as `local ok, r = pcall(function() <body> end) return tostring(ok) .. '|' .. tostring(r)`).

use super::ffi::*;
use super::{basefix, Vm};

fn run(vm: &Vm, body: &[u8]) -> Vec<u8> {
    let mut code = b"local ok, r = pcall(function() ".to_vec();
    code.extend_from_slice(body);
    code.extend_from_slice(b" end) return tostring(ok) .. '|' .. tostring(r)");
    let l = vm.0;
    unsafe {
        let top = lua_gettop(l);
        assert_eq!(basefix::load_chunk(l, &code, c"@user_script"), 0, "{}", String::from_utf8_lossy(body));
        assert_eq!(lua_pcall(l, 0, 1, 0), 0, "{}", String::from_utf8_lossy(body));
        let out = super::to_bytes(l, -1).unwrap_or(b"").to_vec();
        lua_settop(l, top);
        out
    }
}

#[test]
fn scripts_match_redis() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"return cjson.encode({1,2,3,{a={b='c'}}})", b"true|[1,2,3,{\"a\":{\"b\":\"c\"}}]"),
        (b"return cjson.encode({[1]=1,[3]=3})", b"true|[1,null,3]"),
        (b"return cjson.encode({[1]=1,[100]=3})", b"false|user_script:1: Cannot serialise table: excessively sparse array"),
        (b"return cjson.encode({1/3, 100, 1e20, 0.1, -0.0, 2^53, 1e-5})", b"true|[0.33333333333333,100,1e+20,0.1,-0,9.007199254741e+15,1e-05]"),
        (b"return cjson.encode('\\0\\1\\31\\127/\\\\\"\\b\\f\\n\\r\\t\\200')", b"true|\"\\u0000\\u0001\\u001f\\u007f\\/\\\\\\\"\\b\\f\\n\\r\\t\xc8\""),
        (b"return cjson.encode({[true]=1})", b"false|user_script:1: Cannot serialise boolean: table key must be a number or string"),
        (b"return cjson.encode(0/0)", b"false|user_script:1: Cannot serialise number: must not be NaN or Inf"),
        (b"return cjson.encode(function() end)", b"false|user_script:1: Cannot serialise function: type not supported"),
        (b"local t = {} t[1] = t return cjson.encode(t)", b"false|user_script:1: Cannot serialise, excessive nesting (1001)"),
        (b"return cjson.encode(cjson.decode('{\"a\":[1,2.5,null,true,false,\"x\\\\u00e9\\\\ud83d\\\\ude00\"]}'))", b"true|{\"a\":[1,2.5,null,true,false,\"x\xc3\xa9\xf0\x9f\x98\x80\"]}"),
        (b"return cjson.decode('[1,2')", b"false|user_script:1: Expected comma or array end but found T_END at character 5"),
        (b"return cjson.decode('{\"a\" 1}')", b"false|user_script:1: Expected colon but found T_NUMBER at character 6"),
        (b"return cjson.decode('\"\\\\x\"')", b"false|user_script:1: Expected value but found invalid escape code at character 2"),
        (b"return cjson.decode('[1]x')", b"false|user_script:1: Expected the end but found invalid token at character 4"),
        (b"return cjson.decode('nul')", b"false|user_script:1: Expected value but found invalid token at character 1"),
        (b"return tostring(cjson.decode('0x10')) .. ' ' .. tostring(cjson.decode('-Infinity')) .. ' ' .. tostring(cjson.decode('1e400'))", b"true|16 -inf inf"),
        (b"return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))", b"false|user_script:1: Found too many nested data structures (1001) at character 1001"),
        (b"local c = cjson.new() c.encode_number_precision(3) return c.encode(1/3) .. cjson.encode(1/3)", b"true|0.3330.33333333333333"),
        (b"local c = cjson.new() c.encode_invalid_numbers('null') local a = c.encode({0/0, 1/0}) c.encode_invalid_numbers(true) return a .. c.encode({0/0, -1/0})", b"true|[null,null][nan,-inf]"),
        (b"local c = cjson.new() return c.encode_max_depth(0)", b"false|user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
        (b"local c = cjson.new() return c.encode_invalid_numbers('maybe')", b"false|user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')"),
        (b"return cjson.encode(cjson.null) .. type(cjson.null) .. cjson._VERSION", b"true|nulluserdata2.1.0"),
        (b"local e = cmsgpack.pack(0, 127, 128, 65536, 2^32, 2^53, -1, -33, -129, -32769, -2^31-1, 0.5, 0.1, 1/0, 'abc', string.rep('x', 40), true, false, nil, {1,2}, {a=1}, {[2]=1}) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h", b"true|007fcc80ce00010000cf0000000100000000cf0020000000000000ffd0dfd1ff7fd2ffff7fffd3ffffffff7fffffffca3f000000cb3fb999999999999aca7f800000a3616263d92878787878787878787878787878787878787878787878787878787878787878787878787878787878c3c2c092010281a16101810201"),
        (b"local a = {} a.x = a return #cmsgpack.pack(a)", b"true|49"),
        (b"local r = {cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255\\208\\128\\202\\63\\128\\0\\0\\147\\1\\2\\3\\130\\161\\97\\1\\161\\98\\192')} return cjson.encode(r)", b"true|[-1,-128,1,[1,2,3],{\"a\":1}]"),
        (b"return cmsgpack.unpack('\\193')", b"false|user_script:1: Bad data format in input."),
        (b"return cmsgpack.unpack('\\146\\1')", b"false|user_script:1: Missing bytes in input."),
        (b"return cmsgpack.unpack('\\129\\192\\1')", b"false|table index is nil"),
        (b"return table.concat({cmsgpack.unpack_one(cmsgpack.pack(1,2,3), 1)}, ',') .. ';' .. table.concat({cmsgpack.unpack_limit(cmsgpack.pack(1,2,3), 2)}, ',')", b"true|2,2;2,1,2"),
        (b"return cmsgpack.unpack_one(cmsgpack.pack(1), 5)", b"false|user_script:1: Start offset 5 greater than input length 1."),
        (b"return cmsgpack.unpack_limit('\\1', -1)", b"false|user_script:1: Invalid request to unpack with offset of 0 and limit of 1."),
        (b"return cmsgpack.pack()", b"false|user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"),
        (b"return table.concat({bit.tobit(2^32 + 5), bit.bnot(0), bit.band(0xff, 0x0f), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.lshift(1, 40), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(1, 33), bit.ror(1, 1), bit.bswap(0x12345678), bit.tobit(0.5), bit.tobit(1.5), bit.tobit(-0.5)}, ',')", b"true|5,-1,15,7,6,256,15,-16,2,-2147483648,2018915346,0,2,0"),
        (b"return bit.tohex(255) .. bit.tohex(-1, -4) .. bit.tohex(65535, -2147483648) .. bit.tohex(0x12345678, 3)", b"true|000000ffFFFF0000FFFF678"),
        (b"return bit.band(1, 'x')", b"false|user_script:1: bad argument #2 to 'band' (number expected, got string)"),
        (b"return bit.tobit()", b"false|user_script:1: bad argument #1 to 'tobit' (number expected, got no value)"),
        (b"local s = struct.pack('>I2<i4bBhHlLTi3!4 b i f >d s c2 x c0', 258, -2, -1, 255, -2, 65535, -3, 2^53, 5, 70000, 1, 2, 1.5, -0.1, 'ab\\0', 'xyz', 'tail') local h = '' for i = 1, #s do h = h .. string.format('%02x', string.byte(s, i)) end return h", b"true|0102fefffffffffffefffffffdffffffffffffff0000000000002000050000000000000070110101020000000000c03fbfb999999999999a616200007879007461696c"),
        (b"return table.concat({struct.unpack('>I2<i4bBhH', struct.pack('>I2<i4bBhH', 258, -2, -1, 255, -2, 65535))}, ',')", b"true|258,-2,-1,255,-2,65535,13"),
        (b"return table.concat({struct.unpack('i16I3', string.rep('\\255', 19))}, ',')", b"true|-1,16777215,20"),
        (b"return table.concat({struct.unpack('bc0s', '\\3abcde\\0f')}, ',')", b"true|abc,de,8"),
        (b"return table.concat({struct.unpack('b', 'abc', 3)}, ',')", b"true|99,4"),
        (b"return struct.unpack('b', 'abc', 0)", b"false|user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)"),
        (b"return struct.unpack('z', 'ab')", b"false|user_script:1: bad argument #1 to 'unpack' (invalid format option 'z')"),
        (b"return struct.unpack('s', 'ab')", b"false|user_script:1: unfinished string in data"),
        (b"return struct.unpack('d', 'ab')", b"false|user_script:1: bad argument #2 to 'unpack' (data string too short)"),
        (b"return struct.pack('i33', 1)", b"false|user_script:1: integral size 33 is larger than limit of 32"),
        (b"return struct.pack('!3i', 1)", b"false|user_script:1: alignment 3 is not a power of 2"),
        (b"return struct.pack('c5', 'abc')", b"false|user_script:1: bad argument #3 to 'pack' (string too short)"),
        (b"return struct.size('i4i8') .. ',' .. struct.size('!bhlifd') .. ',' .. struct.size('bhlifd')", b"true|12,32,27"),
        (b"return struct.size('s')", b"false|user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)"),
        (b"a = 1", b"false|user_script:1: Attempt to modify a readonly table"),
        (b"return a", b"false|user_script:1: Script attempted to access nonexistent global variable 'a'"),
        (b"redis.call = 1", b"false|user_script:1: Attempt to modify a readonly table"),
        (b"string.x = 1", b"false|user_script:1: Attempt to modify a readonly table"),
        (b"getmetatable('').__index = 1", b"false|user_script:1: Attempt to modify a readonly table"),
        (b"setmetatable(_G, {})", b"false|Attempt to modify a readonly table"),
        (b"local g = getmetatable(_G) g.__index = {}", b"false|user_script:1: Attempt to modify a readonly table"),
        (b"rawset(redis, 'call', 1)", b"false|Attempt to modify a readonly table"),
        (b"table.insert(cjson, 1)", b"false|Attempt to modify a readonly table"),
        (b"return type(rawget(redis, 'call')) .. tostring(getmetatable(redis)) .. tostring(_G == _G._G)", b"true|functionniltrue"),
        (b"local n = 0 for k in pairs(cmsgpack) do n = n + 1 end return n", b"true|8"),
        (b"local t = setmetatable({}, getmetatable(_G)) return t.nosuch", b"false|user_script:1: Script attempted to access nonexistent global variable 'nosuch'"),
        (b"return loadstring(string.dump(function() return 1 end))", b"true|nil"),
        (b"return select(2, loadstring('\\27Lua'))", b"true|[string \"\x1bLua\"]:1: unexpected symbol near 'char(27)'"),
        (b"return select('#', unpack({1,2,3}, -2, 2147483647))", b"false|user_script:1: too many results to unpack"),
        (b"return {pcall()} and select(2, pcall())", b"true|attempt to call a boolean value"),
        (b"return redis.sha1hex('Pizza & Mandolino')", b"true|74822d82031af7493c20eefa13bd07ec4fada82f"),
        (b"return redis.error_reply('-My Error').err .. '|' .. redis.status_reply('OK').ok .. '|' .. redis.error_reply('x').err", b"true|My Error|OK|ERR x"),
        (b"return tostring(redis.REDIS_VERSION_NUM) .. redis.REDIS_VERSION .. _VERSION", b"true|4587677.0.15Lua 5.1"),
        (b"return print", b"false|user_script:1: Script attempted to access nonexistent global variable 'print'"),
        (b"return __redis__err__handler('x').err", b"true|ERR x"),
    ];
    let vm = Vm::new_eval();
    let mut bad = Vec::new();
    for (body, want) in cases {
        let got = run(&vm, body);
        if got != *want {
            bad.push(format!(
                "{}\n  got:  {}\n  want: {}",
                String::from_utf8_lossy(body),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want)
            ));
        }
    }
    assert!(bad.is_empty(), "{} of {} differ:\n{}", bad.len(), cases.len(), bad.join("\n"));
}

#[test]
fn functions_interpreter_globals() {
    let vm = Vm::new_func();
    // Outside a library load, the globals read through to the real ones; they stay readonly.
    assert_eq!(run(&vm, b"return type(redis.call)"), b"true|function");
    assert_eq!(run(&vm, b"return type(redis.register_function)"), b"true|nil");
    assert_eq!(run(&vm, b"x = 1"), b"false|user_script:1: Attempt to modify a readonly table".as_slice());
    assert_eq!(
        run(&vm, b"local mt = getmetatable(_G) mt.__index = {}"),
        b"false|user_script:1: Attempt to modify a readonly table".as_slice()
    );
    // `_G` is the real globals' proxy (as in Redis, where it is the real globals table).
    assert_eq!(run(&vm, b"return type(getmetatable(_G).__index)"), b"true|function");
    assert_eq!(run(&vm, b"return _G.redis == redis"), b"true|true");
    // A library's load sees only the library API.
    let l = vm.0;
    unsafe {
        let e = super::sandbox::func_load(l, b"\nreturn math.random()").unwrap_err();
        assert_eq!(
            String::from_utf8_lossy(&e),
            "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'math'"
        );
        let e = super::sandbox::func_load(l, b"\nreturn (").unwrap_err();
        assert!(String::from_utf8_lossy(&e).starts_with("Error compiling function: user_function:2:"));
        assert_eq!(lua_gettop(l), 0);
    }
    assert_eq!(run(&vm, b"return type(math.random)"), b"true|function");
}

#[test]
fn fresh_interpreter_memory() {
    // Redis 7.0.15 reports 31744 bytes for a fresh interpreter; the proxies add a little.
    let vm = Vm::new_eval();
    assert!(vm.memory() < 64 * 1024, "{}", vm.memory());
}

#[test]
fn libraries_survive_random_input() {
    // Random bytes and formats through every decoder and packer: errors are fine, crashes,
    // panics and Lua API misuse (lua-src checks it in debug builds) are not.
    let vm = Vm::new_eval();
    let script = br#"
        local seed = 12345
        local function rnd(n) seed = (seed * 1103515245 + 12345) % 2147483648 return seed % n end
        local alpha = '[]{}",:0123456789.eE+-tfnulrsaINx\\/ bBhHlLTiIfdscx<>!\0\128\144\145\192\193\202\203\204\208\217\220\222\223'
        local function rstr(n)
            local t = {}
            for i = 1, rnd(n) do
                if rnd(3) == 0 then t[i] = string.char(rnd(256)) else local k = rnd(#alpha) + 1 t[i] = alpha:sub(k, k) end
            end
            return table.concat(t)
        end
        local n = 0
        for i = 1, 3000 do
            local s = rstr(40)
            if pcall(cjson.decode, s) then n = n + 1 end
            if pcall(cmsgpack.unpack, s) then n = n + 1 end
            pcall(cmsgpack.unpack_one, s, rnd(5))
            pcall(cmsgpack.unpack_limit, s, rnd(4), rnd(5))
            local f = rstr(8)
            pcall(struct.unpack, f, s, rnd(4))
            pcall(struct.pack, f, rnd(1000) - 500, s, 1.5, s)
            pcall(struct.size, f)
            local ok, v = pcall(cjson.decode, s)
            if ok then pcall(cjson.encode, v) pcall(cmsgpack.pack, v) end
            pcall(bit.tohex, rnd(100000) - 50000, rnd(20) - 10)
        end
        return n
    "#;
    let got = run(&vm, script);
    assert!(got.starts_with(b"true|"), "{}", String::from_utf8_lossy(&got));
}
