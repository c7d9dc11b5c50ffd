/* Ferrocache's Lua glue: the parts of Redis 7.0's script_lua.c / eval.c / function_lua.c that
 * only manipulate the Lua state (sandbox, redis.* helpers, error tables, readonly tables,
 * math.random), ported from Redis (BSD-3-Clause, Copyright (c) 2009-2012, Salvatore Sanfilippo
 * and Redis Ltd.). Everything that touches the server (redis.call, logging, flags, function
 * registration) calls back into Rust through the ferro_rs_* functions.
 *
 * Every lua_error() / longjmp happens in a C frame of this file: the Rust callbacks always
 * return normally and tell us whether to raise. */

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include <string.h>
#include <strings.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- Rust side ---------------------------------------------------------------------------- */
/* Run redis.call / redis.pcall. Returns the number of results, or -1 when an error table is on
 * the top of the stack and must be raised. */
extern int ferro_rs_call(lua_State *L, int raise);
/* redis.acl_check_cmd: same contract. */
extern int ferro_rs_acl_check(lua_State *L);
/* Whether a script invocation is running on this thread. */
extern int ferro_rs_in_run(void);
extern void ferro_rs_setresp(int resp);
extern void ferro_rs_set_repl(int flags);
extern void ferro_rs_log(int level, const char *s, size_t len);
extern int ferro_rs_verbosity(void);
/* Returns 1 when the running script must be killed (SCRIPT KILL / FUNCTION KILL). */
extern int ferro_rs_should_kill(void);
/* Returns 1 when the FUNCTION LOAD run exceeded its time budget. */
extern int ferro_rs_load_timed_out(void);
extern void ferro_rs_sha1hex(const char *s, size_t len, char *out41);
/* Register a function during FUNCTION LOAD. Returns NULL on success or an error text. */
extern const char *ferro_rs_register_function(const char *name, size_t name_len, const char *desc,
                                              size_t desc_len, int has_desc, int ref, uint64_t flags);
extern int ferro_rs_in_load(void);

#define REDIS_VERSION_NUM 0x0007000f
#define REDIS_VERSION "7.0.15"

#define SCRIPT_FLAG_NO_WRITES        (1ULL<<0)
#define SCRIPT_FLAG_ALLOW_OOM        (1ULL<<1)
#define SCRIPT_FLAG_ALLOW_STALE      (1ULL<<2)
#define SCRIPT_FLAG_NO_CLUSTER       (1ULL<<3)
#define SCRIPT_FLAG_ALLOW_CROSS_SLOT (1ULL<<5)

typedef struct { uint64_t flag; const char *str; } scriptFlag;
static scriptFlag scripts_flags_def[] = {
    {SCRIPT_FLAG_NO_WRITES, "no-writes"},
    {SCRIPT_FLAG_ALLOW_OOM, "allow-oom"},
    {SCRIPT_FLAG_ALLOW_STALE, "allow-stale"},
    {SCRIPT_FLAG_NO_CLUSTER, "no-cluster"},
    {SCRIPT_FLAG_ALLOW_CROSS_SLOT, "allow-cross-slot-keys"},
    {0, NULL},
};

/* ---- allow / deny lists (script_lua.c) ---------------------------------------------------- */
static char *libraries_allow_list[] = {"string", "cjson", "bit", "cmsgpack", "math", "table", "struct", NULL};
static char *redis_api_allow_list[] = {"redis", "__redis__err__handler", NULL};
static char *lua_builtins_allow_list[] = {
    "xpcall", "tostring", "setmetatable", "next", "assert", "tonumber", "rawequal",
    "collectgarbage", "getmetatable", "rawset", "pcall", "coroutine", "type", "_G", "select",
    "unpack", "gcinfo", "pairs", "rawget", "loadstring", "ipairs", "_VERSION", "load", "error", NULL,
};
static char *lua_builtins_deprecated[] = {"newproxy", "setfenv", "getfenv", NULL};
static char *lua_builtins_removed_after_initialization_allow_list[] = {"debug", NULL};
static char **allow_lists[] = {
    libraries_allow_list, redis_api_allow_list, lua_builtins_allow_list,
    lua_builtins_removed_after_initialization_allow_list, NULL,
};
static char *deny_list[] = {"dofile", "loadfile", "print", NULL};

/* ---- error tables ------------------------------------------------------------------------- */

/* luaPushErrorBuff: "-CODE msg" or "msg" (gets "ERR "). Pushes {err="CODE msg"}. */
void ferro_push_error_len(lua_State *lua, const char *s, size_t len) {
    luaL_Buffer b;
    const char *code = "ERR";
    size_t code_len = 3;
    const char *msg = s;
    size_t msg_len = len;
    if (len > 0 && s[0] == '-') {
        const char *sp = memchr(s, ' ', len);
        if (!sp) {
            msg = s + 1;
            msg_len = len - 1;
        } else {
            code = s + 1;
            code_len = (size_t)(sp - s) - 1;
            msg = sp + 1;
            msg_len = len - (size_t)(sp + 1 - s);
        }
    }
    /* sdstrim(msg, "\r\n") */
    while (msg_len > 0 && (msg[0] == '\r' || msg[0] == '\n')) { msg++; msg_len--; }
    while (msg_len > 0 && (msg[msg_len - 1] == '\r' || msg[msg_len - 1] == '\n')) msg_len--;
    lua_newtable(lua);
    lua_pushstring(lua, "err");
    luaL_buffinit(lua, &b);
    luaL_addlstring(&b, code, code_len);
    luaL_addchar(&b, ' ');
    luaL_addlstring(&b, msg, msg_len);
    luaL_pushresult(&b);
    /* lua_pushstring semantics: the message stops at the first NUL like Redis's. */
    {
        size_t l;
        const char *p = lua_tolstring(lua, -1, &l);
        size_t n = strlen(p);
        if (n != l) {
            lua_pushlstring(lua, p, n);
            lua_remove(lua, -2);
        }
    }
    lua_settable(lua, -3);
}

void ferro_push_error(lua_State *lua, const char *s) { ferro_push_error_len(lua, s, strlen(s)); }

/* ---- protection --------------------------------------------------------------------------- */

static int luaProtectedTableError(lua_State *lua) {
    int argc = lua_gettop(lua);
    if (argc != 2) {
        luaL_error(lua, "Wrong number of arguments to luaProtectedTableError");
    }
    if (!lua_isstring(lua, -1) && !lua_isnumber(lua, -1)) {
        luaL_error(lua, "Second argument to luaProtectedTableError must be a string or number");
    }
    const char *variable_name = lua_tostring(lua, -1);
    luaL_error(lua, "Script attempted to access nonexistent global variable '%s'", variable_name);
    return 0;
}

static void luaSetErrorMetatable(lua_State *lua) {
    lua_newtable(lua);
    lua_pushcfunction(lua, luaProtectedTableError);
    lua_setfield(lua, -2, "__index");
    lua_setmetatable(lua, -2);
}

static int luaNewIndexAllowList(lua_State *lua) {
    int argc = lua_gettop(lua);
    if (argc != 3) {
        luaL_error(lua, "Wrong number of arguments to luaNewIndexAllowList");
    }
    if (!lua_istable(lua, -3)) {
        luaL_error(lua, "first argument to luaNewIndexAllowList must be a table");
    }
    if (!lua_isstring(lua, -2) && !lua_isnumber(lua, -2)) {
        luaL_error(lua, "Second argument to luaNewIndexAllowList must be a string or number");
    }
    const char *variable_name = lua_tostring(lua, -2);
    char ***allow_l = allow_lists;
    for (; *allow_l; ++allow_l) {
        char **c = *allow_l;
        for (; *c; ++c) {
            if (strcmp(*c, variable_name) == 0) break;
        }
        if (*c) break;
    }
    int allowed = (*allow_l != NULL);
    if (!allowed) {
        char **c = lua_builtins_deprecated;
        for (; *c; ++c) {
            if (strcmp(*c, variable_name) == 0) {
                allowed = 0; /* lua-enable-deprecated-api does not exist in 7.0.15's config */
                break;
            }
        }
    }
    if (allowed) lua_rawset(lua, -3);
    (void)deny_list;
    return 0;
}

static void luaSetAllowListProtection(lua_State *lua) {
    lua_newtable(lua);
    lua_pushcfunction(lua, luaNewIndexAllowList);
    lua_setfield(lua, -2, "__newindex");
    lua_setmetatable(lua, -2);
}

static void luaSetTableProtectionRecursively(lua_State *lua) {
    if (lua_isreadonlytable(lua, -1)) return;
    lua_enablereadonlytable(lua, -1, 1);
    lua_checkstack(lua, 2);
    lua_pushnil(lua);
    while (lua_next(lua, -2)) {
        if (lua_istable(lua, -1)) luaSetTableProtectionRecursively(lua);
        lua_pop(lua, 1);
    }
    if (lua_getmetatable(lua, -1)) {
        luaSetTableProtectionRecursively(lua);
        lua_pop(lua, 1);
    }
}

static void luaSetTableProtectionForBasicTypes(lua_State *lua) {
    static const int types[] = {LUA_TSTRING, LUA_TNUMBER, LUA_TBOOLEAN, LUA_TNIL,
                                LUA_TFUNCTION, LUA_TTHREAD, LUA_TLIGHTUSERDATA};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        switch (types[i]) {
        case LUA_TSTRING: lua_pushstring(lua, ""); break;
        case LUA_TNUMBER: lua_pushnumber(lua, 0); break;
        case LUA_TBOOLEAN: lua_pushboolean(lua, 0); break;
        case LUA_TNIL: lua_pushnil(lua); break;
        case LUA_TFUNCTION: lua_pushcfunction(lua, NULL); break;
        case LUA_TTHREAD: lua_newthread(lua); break;
        case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(lua, (void *)lua); break;
        }
        if (lua_getmetatable(lua, -1)) {
            luaSetTableProtectionRecursively(lua);
            lua_pop(lua, 1);
        }
        lua_pop(lua, 1);
    }
}

/* ---- redis.* ------------------------------------------------------------------------------ */

static int luaRedisCallCommand(lua_State *lua) {
    int n = ferro_rs_call(lua, 1);
    if (n < 0) return lua_error(lua);
    return n;
}

static int luaRedisPCallCommand(lua_State *lua) {
    int n = ferro_rs_call(lua, 0);
    if (n < 0) return lua_error(lua);
    return n;
}

static int luaRedisAclCheckCmdPermissionsCommand(lua_State *lua) {
    int n = ferro_rs_acl_check(lua);
    if (n < 0) return lua_error(lua);
    return n;
}

static int luaRedisPcall(lua_State *lua) {
    int argc = lua_gettop(lua);
    lua_pushboolean(lua, 1);
    lua_insert(lua, 1);
    if (lua_pcall(lua, argc - 1, LUA_MULTRET, 0)) {
        lua_remove(lua, 1);
        if (lua_istable(lua, -1)) {
            lua_getfield(lua, -1, "err");
            if (lua_isstring(lua, -1)) {
                lua_replace(lua, -2);
            }
        }
        lua_pushboolean(lua, 0);
        lua_insert(lua, 1);
    }
    return lua_gettop(lua);
}

static int luaRedisSha1hexCommand(lua_State *lua) {
    int argc = lua_gettop(lua);
    char digest[41];
    size_t len;
    const char *s;
    if (argc != 1) {
        ferro_push_error(lua, "wrong number of arguments");
        return lua_error(lua);
    }
    s = lua_tolstring(lua, 1, &len);
    ferro_rs_sha1hex(s, s ? len : 0, digest);
    lua_pushstring(lua, digest);
    return 1;
}

static int luaRedisReturnSingleFieldTable(lua_State *lua, char *field) {
    if (lua_gettop(lua) != 1 || lua_type(lua, -1) != LUA_TSTRING) {
        ferro_push_error(lua, "wrong number or type of arguments");
        return 1;
    }
    lua_newtable(lua);
    lua_pushstring(lua, field);
    lua_pushvalue(lua, -3);
    lua_settable(lua, -3);
    return 1;
}

static int luaRedisErrorReplyCommand(lua_State *lua) {
    if (lua_gettop(lua) != 1 || lua_type(lua, -1) != LUA_TSTRING) {
        ferro_push_error(lua, "wrong number or type of arguments");
        return 1;
    }
    const char *err = lua_tostring(lua, -1);
    if (err[0] != '-') {
        size_t n = strlen(err);
        char *buf = malloc(n + 2);
        buf[0] = '-';
        memcpy(buf + 1, err, n + 1);
        /* ferro_push_error_len may raise only on OOM; keep it simple. */
        ferro_push_error_len(lua, buf, n + 1);
        free(buf);
    } else {
        ferro_push_error_len(lua, err, strlen(err));
    }
    return 1;
}

static int luaRedisStatusReplyCommand(lua_State *lua) { return luaRedisReturnSingleFieldTable(lua, "ok"); }

static int luaRedisSetReplCommand(lua_State *lua) {
    int flags, argc = lua_gettop(lua);
    if (!ferro_rs_in_run()) {
        ferro_push_error(lua, "redis.set_repl can only be called inside a script invocation");
        return lua_error(lua);
    }
    if (argc != 1) {
        ferro_push_error(lua, "redis.set_repl() requires two arguments.");
        return lua_error(lua);
    }
    flags = lua_tonumber(lua, -1);
    if ((flags & ~(1 | 2)) != 0) {
        ferro_push_error(lua, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
        return lua_error(lua);
    }
    ferro_rs_set_repl(flags);
    return 0;
}

static int luaRedisReplicateCommandsCommand(lua_State *lua) {
    lua_pushboolean(lua, 1);
    return 1;
}

static int luaRedisBreakpointCommand(lua_State *lua) {
    lua_pushboolean(lua, 0);
    return 1;
}

static int luaRedisDebugCommand(lua_State *lua) {
    (void)lua;
    return 0;
}

static int luaLogCommand(lua_State *lua) {
    int j, argc = lua_gettop(lua);
    int level;
    luaL_Buffer b;
    if (argc < 2) {
        ferro_push_error(lua, "redis.log() requires two arguments or more.");
        return lua_error(lua);
    } else if (!lua_isnumber(lua, -argc)) {
        ferro_push_error(lua, "First argument must be a number (log level).");
        return lua_error(lua);
    }
    level = lua_tonumber(lua, -argc);
    if (level < 0 || level > 3) {
        ferro_push_error(lua, "Invalid debug level.");
        return lua_error(lua);
    }
    if (level < ferro_rs_verbosity()) return 0;
    /* Collect the strings first (lua_tolstring converts numbers in place). */
    {
        size_t total = 0;
        char *log;
        int first = 1;
        for (j = 1; j < argc; j++) {
            size_t len;
            const char *s = lua_tolstring(lua, (-argc) + j, &len);
            if (s) total += len + 1;
        }
        log = malloc(total + 1);
        total = 0;
        for (j = 1; j < argc; j++) {
            size_t len;
            const char *s = lua_tolstring(lua, (-argc) + j, &len);
            if (s) {
                if (!first) log[total++] = ' ';
                first = 0;
                memcpy(log + total, s, len);
                total += len;
            }
        }
        ferro_rs_log(level, log, total);
        free(log);
    }
    (void)b;
    return 0;
}

static int luaSetResp(lua_State *lua) {
    if (!ferro_rs_in_run()) {
        ferro_push_error(lua, "redis.setresp can only be called inside a script invocation");
        return lua_error(lua);
    }
    int argc = lua_gettop(lua);
    if (argc != 1) {
        ferro_push_error(lua, "redis.setresp() requires one argument.");
        return lua_error(lua);
    }
    int resp = lua_tonumber(lua, -argc);
    if (resp != 2 && resp != 3) {
        ferro_push_error(lua, "RESP version must be 2 or 3.");
        return lua_error(lua);
    }
    ferro_rs_setresp(resp);
    return 0;
}

/* ---- math.random (rand.c, redisLrand48) --------------------------------------------------- */
#define N 16
#define MASK ((1 << (N - 1)) + (1 << (N - 1)) - 1)
#define LOW(x) ((unsigned)(x) & MASK)
#define HIGH(x) LOW((x) >> N)
#define MUL(x, y, z) { int32_t l = (long)(x) * (long)(y); (z)[0] = LOW(l); (z)[1] = HIGH(l); }
#define CARRY(x, y) ((int32_t)(x) + (long)(y) > MASK)
#define ADDEQU(x, y, z) (z = CARRY(x, (y)), x = LOW(x + (y)))
#define X0 0x330E
#define X1 0xABCD
#define X2 0x1234
#define A0 0xE66D
#define A1 0xDEEC
#define A2 0x5
#define C 0xB
#define SET3(x, x0, x1, x2) ((x)[0] = (x0), (x)[1] = (x1), (x)[2] = (x2))
#define SEED(x0, x1, x2) (SET3(x, x0, x1, x2), SET3(a, A0, A1, A2), c = C)
#define REDIS_LRAND48_MAX INT32_MAX

static uint32_t x[3] = {X0, X1, X2}, a[3] = {A0, A1, A2}, c = C;

static void next_rand(void) {
    uint32_t p[2], q[2], r[2], carry0, carry1;
    MUL(a[0], x[0], p);
    ADDEQU(p[0], c, carry0);
    ADDEQU(p[1], carry0, carry1);
    MUL(a[0], x[1], q);
    ADDEQU(p[1], q[0], carry0);
    MUL(a[1], x[0], r);
    x[2] = LOW(carry0 + carry1 + CARRY(p[1], r[0]) + q[1] + r[1] + a[0] * x[2] + a[1] * x[1] + a[2] * x[0]);
    x[1] = LOW(p[1] + r[0]);
    x[0] = LOW(p[0]);
}

static int32_t redisLrand48(void) {
    next_rand();
    return (((int32_t)x[2] << (N - 1)) + (x[1] >> 1));
}

static void redisSrand48(int32_t seedval) { SEED(X0, LOW(seedval), HIGH(seedval)); }

static int redis_math_random(lua_State *L) {
    if (!ferro_rs_in_run()) {
        return luaL_error(L, "math.random can only be called inside a script invocation");
    }
    lua_Number r = (lua_Number)(redisLrand48() % REDIS_LRAND48_MAX) / (lua_Number)REDIS_LRAND48_MAX;
    switch (lua_gettop(L)) {
    case 0: lua_pushnumber(L, r); break;
    case 1: {
        int u = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= u, 1, "interval is empty");
        lua_pushnumber(L, floor(r * u) + 1);
        break;
    }
    case 2: {
        int l = luaL_checkint(L, 1);
        int u = luaL_checkint(L, 2);
        luaL_argcheck(L, l <= u, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (u - l + 1)) + l);
        break;
    }
    default: return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int redis_math_randomseed(lua_State *L) {
    if (!ferro_rs_in_run()) {
        return luaL_error(L, "math.randomseed can only be called inside a script invocation");
    }
    redisSrand48(luaL_checkint(L, 1));
    return 0;
}

/* ---- hooks -------------------------------------------------------------------------------- */

static void luaMaskCountHook(lua_State *lua, lua_Debug *ar) {
    (void)ar;
    if (ferro_rs_should_kill()) {
        /* Keep firing so pcall cannot swallow the kill. */
        lua_sethook(lua, luaMaskCountHook, LUA_MASKLINE, 0);
        ferro_push_error(lua, "Script killed by user with SCRIPT KILL...");
        lua_error(lua);
    }
}

void ferro_set_run_hook(lua_State *lua, int on) {
    if (on) lua_sethook(lua, luaMaskCountHook, LUA_MASKCOUNT, 100000);
    else lua_sethook(lua, NULL, 0, 0);
}

static void luaEngineLoadHook(lua_State *lua, lua_Debug *ar) {
    (void)ar;
    if (ferro_rs_load_timed_out()) {
        lua_sethook(lua, luaEngineLoadHook, LUA_MASKLINE, 0);
        ferro_push_error(lua, "FUNCTION LOAD timeout");
        lua_error(lua);
    }
}

/* ---- shared setup ------------------------------------------------------------------------- */

static void luaLoadLib(lua_State *lua, const char *libname, lua_CFunction luafunc) {
    lua_pushcfunction(lua, luafunc);
    lua_pushstring(lua, libname);
    lua_call(lua, 1, 0);
}

LUALIB_API int(luaopen_cjson)(lua_State *L);
LUALIB_API int(luaopen_struct)(lua_State *L);
LUALIB_API int(luaopen_cmsgpack)(lua_State *L);
LUALIB_API int(luaopen_bit)(lua_State *L);

static void luaLoadLibraries(lua_State *lua) {
    luaLoadLib(lua, "", luaopen_base);
    luaLoadLib(lua, LUA_TABLIBNAME, luaopen_table);
    luaLoadLib(lua, LUA_STRLIBNAME, luaopen_string);
    luaLoadLib(lua, LUA_MATHLIBNAME, luaopen_math);
    luaLoadLib(lua, LUA_DBLIBNAME, luaopen_debug);
    luaLoadLib(lua, "cjson", luaopen_cjson);
    luaLoadLib(lua, "struct", luaopen_struct);
    luaLoadLib(lua, "cmsgpack", luaopen_cmsgpack);
    luaLoadLib(lua, "bit", luaopen_bit);
}

static void luaRegisterVersion(lua_State *lua) {
    lua_pushstring(lua, "REDIS_VERSION_NUM");
    lua_pushnumber(lua, REDIS_VERSION_NUM);
    lua_settable(lua, -3);
    lua_pushstring(lua, "REDIS_VERSION");
    lua_pushstring(lua, REDIS_VERSION);
    lua_settable(lua, -3);
}

static void luaRegisterLogFunction(lua_State *lua) {
    lua_pushstring(lua, "log");
    lua_pushcfunction(lua, luaLogCommand);
    lua_settable(lua, -3);
    lua_pushstring(lua, "LOG_DEBUG");
    lua_pushnumber(lua, 0);
    lua_settable(lua, -3);
    lua_pushstring(lua, "LOG_VERBOSE");
    lua_pushnumber(lua, 1);
    lua_settable(lua, -3);
    lua_pushstring(lua, "LOG_NOTICE");
    lua_pushnumber(lua, 2);
    lua_settable(lua, -3);
    lua_pushstring(lua, "LOG_WARNING");
    lua_pushnumber(lua, 3);
    lua_settable(lua, -3);
}

static void setfn(lua_State *lua, const char *name, lua_CFunction f) {
    lua_pushstring(lua, name);
    lua_pushcfunction(lua, f);
    lua_settable(lua, -3);
}

static void setnum(lua_State *lua, const char *name, double v) {
    lua_pushstring(lua, name);
    lua_pushnumber(lua, v);
    lua_settable(lua, -3);
}

static void luaRegisterRedisAPI(lua_State *lua) {
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetAllowListProtection(lua);
    lua_pop(lua, 1);

    luaLoadLibraries(lua);

    lua_pushcfunction(lua, luaRedisPcall);
    lua_setglobal(lua, "pcall");

    lua_newtable(lua);
    setfn(lua, "call", luaRedisCallCommand);
    setfn(lua, "pcall", luaRedisPCallCommand);
    luaRegisterLogFunction(lua);
    luaRegisterVersion(lua);
    setfn(lua, "setresp", luaSetResp);
    setfn(lua, "sha1hex", luaRedisSha1hexCommand);
    setfn(lua, "error_reply", luaRedisErrorReplyCommand);
    setfn(lua, "status_reply", luaRedisStatusReplyCommand);
    setfn(lua, "set_repl", luaRedisSetReplCommand);
    setnum(lua, "REPL_NONE", 0);
    setnum(lua, "REPL_AOF", 1);
    setnum(lua, "REPL_SLAVE", 2);
    setnum(lua, "REPL_REPLICA", 2);
    setnum(lua, "REPL_ALL", 3);
    setfn(lua, "acl_check_cmd", luaRedisAclCheckCmdPermissionsCommand);
    lua_setglobal(lua, "redis");

    lua_getglobal(lua, "math");
    setfn(lua, "random", redis_math_random);
    setfn(lua, "randomseed", redis_math_randomseed);
    lua_setglobal(lua, "math");
}

/* ---- the EVAL interpreter (eval.c scriptingInit) ------------------------------------------ */

lua_State *ferro_eval_vm_new(void) {
    lua_State *lua = lua_open();
    luaRegisterRedisAPI(lua);

    lua_getglobal(lua, "redis");
    setfn(lua, "breakpoint", luaRedisBreakpointCommand);
    setfn(lua, "debug", luaRedisDebugCommand);
    setfn(lua, "replicate_commands", luaRedisReplicateCommandsCommand);
    lua_setglobal(lua, "redis");

    {
        char *errh_func = "local dbg = debug\n"
                          "debug = nil\n"
                          "function __redis__err__handler(err)\n"
                          "  local i = dbg.getinfo(2,'nSl')\n"
                          "  if i and i.what == 'C' then\n"
                          "    i = dbg.getinfo(3,'nSl')\n"
                          "  end\n"
                          "  if type(err) ~= 'table' then\n"
                          "    err = {err='ERR ' .. tostring(err)}"
                          "  end"
                          "  if i then\n"
                          "    err['source'] = i.source\n"
                          "    err['line'] = i.currentline\n"
                          "  end"
                          "  return err\n"
                          "end\n";
        luaL_loadbuffer(lua, errh_func, strlen(errh_func), "@err_handler_def");
        lua_pcall(lua, 0, 0, 0);
    }

    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    lua_pop(lua, 1);
    luaSetTableProtectionForBasicTypes(lua);
    return lua;
}

/* Set a global while the globals table is readonly (KEYS / ARGV). Value on top, popped. */
void ferro_set_global_unprotected(lua_State *lua, const char *name) {
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 0);
    lua_setglobal(lua, name);
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 1);
}

/* ---- the FUNCTION interpreter (function_lua.c) -------------------------------------------- */

static int luaRegisterFunctionReadFlags(lua_State *lua, uint64_t *flags) {
    int j = 1;
    int ret = -1;
    int f_flags = 0;
    while (1) {
        lua_pushnumber(lua, j++);
        lua_gettable(lua, -2);
        int t = lua_type(lua, -1);
        if (t == LUA_TNIL) {
            lua_pop(lua, 1);
            break;
        }
        if (!lua_isstring(lua, -1)) {
            lua_pop(lua, 1);
            goto done;
        }
        const char *flag_str = lua_tostring(lua, -1);
        int found = 0;
        for (scriptFlag *flag = scripts_flags_def; flag->str; ++flag) {
            if (!strcasecmp(flag->str, flag_str)) {
                f_flags |= flag->flag;
                found = 1;
                break;
            }
        }
        lua_pop(lua, 1);
        if (!found) goto done;
    }
    *flags = f_flags;
    ret = 0;
done:
    return ret;
}

typedef struct {
    const char *name;
    size_t name_len;
    const char *desc;
    size_t desc_len;
    int has_desc;
    int ref;
    uint64_t flags;
} regArgs;

static int luaRegisterFunctionReadNamedArgs(lua_State *lua, regArgs *ra) {
    char *err = NULL;
    int has_name = 0, has_ref = 0;
    uint64_t flags = 0;
    ra->has_desc = 0;
    if (!lua_istable(lua, 1)) {
        err = "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).";
        goto error;
    }
    lua_pushnil(lua);
    while (lua_next(lua, -2)) {
        if (!lua_isstring(lua, -2)) {
            err = "named argument key given to redis.register_function is not a string";
            goto error;
        }
        const char *key = lua_tostring(lua, -2);
        if (!strcasecmp(key, "function_name")) {
            if (!lua_isstring(lua, -1)) {
                err = "function_name argument given to redis.register_function must be a string";
                goto error;
            }
            /* Keep the string alive in the registry-free way: copy it. */
            size_t l;
            const char *s = lua_tolstring(lua, -1, &l);
            char *cp = malloc(l + 1);
            memcpy(cp, s, l + 1);
            if (has_name) free((void *)ra->name);
            ra->name = cp;
            ra->name_len = l;
            has_name = 1;
        } else if (!strcasecmp(key, "description")) {
            if (!lua_isstring(lua, -1)) {
                err = "description argument given to redis.register_function must be a string";
                goto error;
            }
            size_t l;
            const char *s = lua_tolstring(lua, -1, &l);
            char *cp = malloc(l + 1);
            memcpy(cp, s, l + 1);
            if (ra->has_desc) free((void *)ra->desc);
            ra->desc = cp;
            ra->desc_len = l;
            ra->has_desc = 1;
        } else if (!strcasecmp(key, "callback")) {
            if (!lua_isfunction(lua, -1)) {
                err = "callback argument given to redis.register_function must be a function";
                goto error;
            }
            if (has_ref) lua_unref(lua, ra->ref);
            ra->ref = luaL_ref(lua, LUA_REGISTRYINDEX);
            has_ref = 1;
            continue;
        } else if (!strcasecmp(key, "flags")) {
            if (!lua_istable(lua, -1)) {
                err = "flags argument to redis.register_function must be a table representing function flags";
                goto error;
            }
            if (luaRegisterFunctionReadFlags(lua, &flags) != 0) {
                err = "unknown flag given";
                goto error;
            }
        } else {
            err = "unknown argument given to redis.register_function";
            goto error;
        }
        lua_pop(lua, 1);
    }
    if (!has_name) {
        err = "redis.register_function must get a function name argument";
        goto error;
    }
    if (!has_ref) {
        err = "redis.register_function must get a callback argument";
        goto error;
    }
    ra->flags = flags;
    return 0;
error:
    if (has_name) free((void *)ra->name);
    if (ra->has_desc) free((void *)ra->desc);
    ra->has_desc = 0;
    if (has_ref) lua_unref(lua, ra->ref);
    ferro_push_error(lua, err);
    return -1;
}

static int luaRegisterFunctionReadPositionalArgs(lua_State *lua, regArgs *ra) {
    char *err = NULL;
    ra->has_desc = 0;
    if (!lua_isstring(lua, 1)) {
        err = "first argument to redis.register_function must be a string";
        goto error;
    }
    if (!lua_isfunction(lua, 2)) {
        err = "second argument to redis.register_function must be a function";
        goto error;
    }
    {
        size_t l;
        const char *s = lua_tolstring(lua, 1, &l);
        char *cp = malloc(l + 1);
        memcpy(cp, s, l + 1);
        ra->name = cp;
        ra->name_len = l;
    }
    ra->ref = luaL_ref(lua, LUA_REGISTRYINDEX);
    ra->flags = 0;
    return 0;
error:
    ferro_push_error(lua, err);
    return -1;
}

static int luaRegisterFunction(lua_State *lua) {
    regArgs ra;
    memset(&ra, 0, sizeof(ra));
    if (!ferro_rs_in_load()) {
        ferro_push_error(lua, "redis.register_function can only be called on FUNCTION LOAD command");
        return lua_error(lua);
    }
    int argc = lua_gettop(lua);
    int r;
    if (argc < 1 || argc > 2) {
        ferro_push_error(lua, "wrong number of arguments to redis.register_function");
        return lua_error(lua);
    }
    if (argc == 1) r = luaRegisterFunctionReadNamedArgs(lua, &ra);
    else r = luaRegisterFunctionReadPositionalArgs(lua, &ra);
    if (r != 0) return lua_error(lua);
    const char *err = ferro_rs_register_function(ra.name, ra.name_len, ra.desc, ra.desc_len, ra.has_desc, ra.ref, ra.flags);
    free((void *)ra.name);
    if (ra.has_desc) free((void *)ra.desc);
    if (err) {
        lua_unref(lua, ra.ref);
        ferro_push_error(lua, err);
        return lua_error(lua);
    }
    return 0;
}

lua_State *ferro_func_vm_new(void) {
    lua_State *lua = lua_open();
    luaRegisterRedisAPI(lua);

    lua_newtable(lua); /* load library globals */
    lua_newtable(lua); /* load library `redis` table */
    lua_pushstring(lua, "register_function");
    lua_pushcfunction(lua, luaRegisterFunction);
    lua_settable(lua, -3);
    luaRegisterLogFunction(lua);
    luaRegisterVersion(lua);
    luaSetErrorMetatable(lua);
    lua_setfield(lua, -2, "redis");
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    lua_setfield(lua, LUA_REGISTRYINDEX, "__LIBRARY_API__");

    lua_pushstring(lua, "__ERROR_HANDLER__");
    {
        char *errh_func = "local dbg = debug\n"
                          "debug = nil\n"
                          "local error_handler = function (err)\n"
                          "  local i = dbg.getinfo(2,'nSl')\n"
                          "  if i and i.what == 'C' then\n"
                          "    i = dbg.getinfo(3,'nSl')\n"
                          "  end\n"
                          "  if type(err) ~= 'table' then\n"
                          "    err = {err='ERR ' .. tostring(err)}"
                          "  end"
                          "  if i then\n"
                          "    err['source'] = i.source\n"
                          "    err['line'] = i.currentline\n"
                          "  end"
                          "  return err\n"
                          "end\n"
                          "return error_handler";
        luaL_loadbuffer(lua, errh_func, strlen(errh_func), "@err_handler_def");
        lua_pcall(lua, 0, 1, 0);
    }
    lua_settable(lua, LUA_REGISTRYINDEX);

    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    luaSetErrorMetatable(lua);
    luaSetTableProtectionRecursively(lua);
    lua_pop(lua, 1);

    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    lua_setfield(lua, LUA_REGISTRYINDEX, "__GLOBALS_API__");

    lua_newtable(lua); /* new globals */
    lua_newtable(lua); /* new globals metatable */
    lua_pushvalue(lua, LUA_GLOBALSINDEX);
    lua_setfield(lua, -2, "__index");
    lua_enablereadonlytable(lua, -1, 1);
    lua_setmetatable(lua, -2);
    lua_enablereadonlytable(lua, -1, 1);
    lua_replace(lua, LUA_GLOBALSINDEX);

    luaSetTableProtectionForBasicTypes(lua);
    return lua;
}

/* luaEngineCreate: compile and run a library's code with the load-time globals. Returns 0 on
 * success; on failure pushes the error message (a string) and returns -1. */
int ferro_func_load(lua_State *lua, const char *code, size_t len) {
    int ret = -1;
    lua_getmetatable(lua, LUA_GLOBALSINDEX);
    lua_enablereadonlytable(lua, -1, 0);
    lua_getfield(lua, LUA_REGISTRYINDEX, "__LIBRARY_API__");
    lua_setfield(lua, -2, "__index");
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 1);
    lua_pop(lua, 1);

    if (luaL_loadbuffer(lua, code, len, "@user_function")) {
        const char *e = lua_tostring(lua, -1);
        lua_pushfstring(lua, "Error compiling function: %s", e ? e : "");
        lua_remove(lua, -2);
        goto done;
    }
    lua_sethook(lua, luaEngineLoadHook, LUA_MASKCOUNT, 100000);
    if (lua_pcall(lua, 0, 0, 0)) {
        /* luaExtractErrorInformation: a string gets "ERR ", a table's err field wins. */
        const char *msg = NULL;
        if (lua_isstring(lua, -1)) {
            lua_pushfstring(lua, "ERR %s", lua_tostring(lua, -1));
            msg = lua_tostring(lua, -1);
        } else {
            lua_pushnil(lua);
        }
        if (lua_istable(lua, -2)) {
            lua_getfield(lua, -2, "err");
            if (lua_isstring(lua, -1)) {
                lua_replace(lua, -2);
                msg = lua_tostring(lua, -1);
            } else {
                lua_pop(lua, 1);
            }
        }
        /* sdscatprintf with a NULL %s prints "(null)" in glibc */
        lua_pushfstring(lua, "Error registering functions: %s", msg ? msg : "(null)");
        lua_remove(lua, -2);
        lua_remove(lua, -2);
        goto done;
    }
    ret = 0;
done:
    lua_getmetatable(lua, LUA_GLOBALSINDEX);
    lua_enablereadonlytable(lua, -1, 0);
    lua_getfield(lua, LUA_REGISTRYINDEX, "__GLOBALS_API__");
    lua_setfield(lua, -2, "__index");
    lua_enablereadonlytable(lua, LUA_GLOBALSINDEX, 1);
    lua_pop(lua, 1);
    lua_sethook(lua, NULL, 0, 0);
    return ret;
}

/* Push the function error handler and the function `ref`. */
void ferro_func_push(lua_State *lua, int ref) {
    lua_pushstring(lua, "__ERROR_HANDLER__");
    lua_gettable(lua, LUA_REGISTRYINDEX);
    lua_rawgeti(lua, LUA_REGISTRYINDEX, ref);
}

void ferro_unref(lua_State *lua, int ref) { lua_unref(lua, ref); }

/* evalExtractShebangFlags' flag table, exposed for Rust. */
uint64_t ferro_flag_by_name(const char *s, int case_insensitive) {
    for (scriptFlag *sf = scripts_flags_def; sf->flag; sf++) {
        if (case_insensitive ? !strcasecmp(s, sf->str) : !strcmp(s, sf->str)) return sf->flag;
    }
    return 0;
}
