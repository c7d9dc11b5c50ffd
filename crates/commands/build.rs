//! Builds Redis 7.0.15's Lua 5.1 (with its readonly-table patch) and the libraries Redis loads
//! into scripts (cjson, cmsgpack, bit, struct), plus Ferrocache's glue (lua/ferro_lua.c).

fn main() {
    let files = [
        "lapi.c",
        "lcode.c",
        "ldebug.c",
        "ldo.c",
        "ldump.c",
        "lfunc.c",
        "lgc.c",
        "llex.c",
        "lmem.c",
        "lobject.c",
        "lopcodes.c",
        "lparser.c",
        "lstate.c",
        "lstring.c",
        "ltable.c",
        "ltm.c",
        "lundump.c",
        "lvm.c",
        "lzio.c",
        "strbuf.c",
        "fpconv.c",
        "lauxlib.c",
        "lbaselib.c",
        "ldblib.c",
        "liolib.c",
        "lmathlib.c",
        "loslib.c",
        "ltablib.c",
        "lstrlib.c",
        "loadlib.c",
        "linit.c",
        "lua_cjson.c",
        "lua_struct.c",
        "lua_cmsgpack.c",
        "lua_bit.c",
        "ferro_lua.c",
    ];
    let mut b = cc::Build::new();
    b.include("lua")
        .define("LUA_ANSI", None)
        .define("ENABLE_CJSON_GLOBAL", None)
        .define("REDIS_STATIC", Some(""))
        .define("LUA_USE_MKSTEMP", None)
        .opt_level(2)
        .warnings(false);
    for f in files {
        b.file(format!("lua/{f}"));
    }
    b.compile("ferrolua");
    println!("cargo:rerun-if-changed=lua");
    println!("cargo:rerun-if-changed=build.rs");
}
