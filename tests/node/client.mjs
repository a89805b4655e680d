// A Node service's view of a redis-harness deployment.
//
// It connects exactly as a Node service would (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD,
// REDIS_DB from the environment, REDIS_USERNAME for a service's ACL user; no username means
// the password-only `default` user), with ioredis or node-redis, and prints ONE JSON line.
//
//   node client.mjs <ioredis|node-redis> patterns   the service patterns, results and counts
//   node client.mjs <ioredis|node-redis> probe KEY  one GET of KEY (another service's key)
//   node client.mjs <ioredis|node-redis> writer LIST MS
//                                                  RPUSH 1, 2, 3, ... to LIST for MS
//                                                  milliseconds, one at a time; each ack and
//                                                  error with its wall-clock time
//   node client.mjs <ioredis|node-redis> idle MS ROUNDS
//                                                  ROUNDS times: CLIENT ID, idle MS
//                                                  milliseconds, INCR, CLIENT ID; what failed,
//                                                  and every close/error/reconnect event
//   node client.mjs <ioredis|node-redis> login MS  connect, then watch the client for MS
//                                                  milliseconds: how connect() settled, errors,
//                                                  reconnects
//
// TLS as the Python library reads it: REDIS_TLS_CA_FILE (the deployment's CA bundle) turns TLS
// on, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE are the service's client certificate for a
// deployment with security.tls.client_auth optional or required. The server's certificate is
// checked against the CA and its SANs against REDIS_HOST (Node's default checks, kept).
//
// Keys live under the service's prefix, REDIS_SERVICE (default: REDIS_USERNAME, else price):
// `<service>:v1:<entity>:<id>`. Warnings the client library prints (ioredis's "Skipping the
// ready check" when INFO is refused) are captured into the output as well as shown.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import Redis from "ioredis";
import { createClient } from "redis";

const warnings = [];
const originalWarn = console.warn;
console.warn = (...args) => {
  warnings.push(args.map(String).join(" "));
  originalWarn(...args);
};

const env = process.env;
const host = env.REDIS_HOST ?? "127.0.0.1";
const port = Number(env.REDIS_PORT ?? 6379);
const db = Number(env.REDIS_DB ?? 0);
const username = env.REDIS_USERNAME || undefined;
const password = env.REDIS_PASSWORD || undefined;
const service = env.REDIS_SERVICE || username || "price";
const run = randomBytes(4).toString("hex");
const key = (entity, id) => `${service}:v1:${entity}:${id}`;
// Backoff of 100 ms more per try, at most 1 s; REDIS_RETRY_MS fixes the interval,
// only for the kill tests, so a reconnect surely lands while Redis is still loading.
const retryMs = env.REDIS_RETRY_MS ? Number(env.REDIS_RETRY_MS) : null;
const backoff = (tries) => retryMs ?? Math.min(tries * 100, 1000);
// node-redis PINGs an idle connection this often (README: at most half of the profile's
// server.timeout, 10 s, or Redis closes it). REDIS_PING_MS=0 only for the tests that show
// what the ping prevents, REDIS_ERROR_LISTENER=0 only for the one that shows the crash.
const pingMs = Number(env.REDIS_PING_MS ?? 5000);
const errorListener = env.REDIS_ERROR_LISTENER !== "0";
// A wrong username/password pair (REDIS_USERNAME with `default`'s password, say) never heals
// by retrying: both libraries give up on WRONGPASS instead of reconnecting forever.
// REDIS_AUTH_GIVE_UP=0 only for the test that shows the loop.
// Node's TLS options for both libraries (null: plaintext). TLS 1.2 at least, as the profile's default.
function tlsOptions() {
  if (!env.REDIS_TLS_CA_FILE) return null;
  const options = { ca: readFileSync(env.REDIS_TLS_CA_FILE), minVersion: "TLSv1.2" };
  if (env.REDIS_TLS_CERT_FILE) {
    options.cert = readFileSync(env.REDIS_TLS_CERT_FILE);
    options.key = readFileSync(env.REDIS_TLS_KEY_FILE);
  }
  return options;
}
const tls = tlsOptions();
const giveUp = (err) => env.REDIS_AUTH_GIVE_UP !== "0" && String(err?.message).startsWith("WRONGPASS");

// The options this deployment calls for (README, "Node services"): the ACL user, bounded
// connect and command times, retries while Redis restarts (but not on a wrong password), the
// ready check left on so a reconnect waits until Redis has loaded its data, and for
// node-redis a ping that keeps an idle connection from reaching the server's timeout.
function ioredisClient(extra = {}) {
  const redis = new Redis({
    host,
    port,
    db,
    username,
    password,
    connectTimeout: 2000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 30,
    enableOfflineQueue: true,
    // REDIS_READY_CHECK=0 only for the test that shows what the check prevents.
    enableReadyCheck: env.REDIS_READY_CHECK !== "0",
    retryStrategy: backoff,
    lazyConnect: true,
    ...(tls ? { tls } : {}),
    ...extra,
  });
  // ioredis's retryStrategy never sees why a connection failed; its 'error' event does.
  redis.on("error", (err) => {
    if (giveUp(err)) redis.disconnect();
  });
  // ioredis listens for each socket's 'error' with once(). A refused TLS session can raise two
  // (the server's alert, then ECONNRESET), and the second, unheard, would end the process. The
  // first still reaches the client's 'error' event; later ones on a dead socket add nothing.
  const connect = redis.connector.connect.bind(redis.connector);
  redis.connector.connect = async (...args) => {
    const stream = await connect(...args);
    stream.on("error", () => {});
    return stream;
  };
  return redis;
}

function nodeRedisClient() {
  const client = createClient({
    socket: {
      host,
      port,
      connectTimeout: 2000,
      reconnectStrategy: (tries, cause) => (giveUp(cause) ? cause : backoff(tries)),
      ...(tls ? { tls: true, ...tls } : {}),
    },
    username,
    password,
    database: db,
    pingInterval: pingMs,
  });
  // Without a listener, the first 'error' (a restart, an idle close) throws and ends the
  // process. Reconnects are counted by the calls that fail, not logged.
  if (errorListener) client.on("error", () => {});
  return client;
}

// One interface over both libraries for the patterns; each returns plain values.
function ioredisOps(r) {
  return {
    get: (k) => r.get(k),
    setEx: (k, s, v) => r.set(k, v, "EX", s),
    ttl: (k) => r.ttl(k),
    del: (...ks) => r.del(...ks),
    setNxPx: (k, v, ms) => r.set(k, v, "PX", ms, "NX"),
    eval: (script, keys, args) => r.eval(script, keys.length, ...keys, ...args),
    pipeline: async (count) => {
      const p = r.pipeline();
      for (let i = 0; i < count; i++) p.set(key("pipe", `${run}:${i}`), String(i), "EX", 60);
      for (let i = 0; i < count; i++) p.get(key("pipe", `${run}:${i}`));
      const replies = await p.exec();
      return replies.map(([err, value]) => (err ? { error: err.message } : value));
    },
    multi: async (k) => {
      const replies = await r.multi().incr(k).incr(k).expire(k, 60).exec();
      return replies.map(([err, value]) => (err ? { error: err.message } : value));
    },
    info: () => r.info("server"),
    incr: (k) => r.incr(k),
    clientId: () => r.client("ID"),
    close: () => r.quit(),
    client: r,
  };
}

function nodeRedisOps(c) {
  return {
    get: (k) => c.get(k),
    setEx: (k, s, v) => c.set(k, v, { EX: s }),
    ttl: (k) => c.ttl(k),
    del: (...ks) => c.del(ks),
    setNxPx: (k, v, ms) => c.set(k, v, { PX: ms, NX: true }),
    eval: (script, keys, args) => c.eval(script, { keys, arguments: args.map(String) }),
    pipeline: async (count) => {
      const p = c.multi();
      for (let i = 0; i < count; i++) p.set(key("pipe", `${run}:${i}`), String(i), { EX: 60 });
      for (let i = 0; i < count; i++) p.get(key("pipe", `${run}:${i}`));
      const replies = await p.execAsPipeline();
      return replies.map((v) => (v instanceof Error ? { error: v.message } : v));
    },
    multi: async (k) => {
      const replies = await c.multi().incr(k).incr(k).expire(k, 60).exec();
      // node-redis turns EXPIRE's 1/0 into true/false; report Redis's own reply.
      return replies.map((v) => (typeof v === "boolean" ? Number(v) : v));
    },
    info: () => c.info("server"),
    incr: (k) => c.incr(k),
    clientId: () => c.clientId(),
    close: () => c.quit(),
    client: c,
  };
}

// Sliding-window rate limiter: server time from TIME, so every app instance agrees on the
// window whatever its own clock says.
const RATE_LIMIT = `
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window_us = tonumber(ARGV[1]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now_us - window_us)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_us, now_us .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

// Release the lock only while it is still ours.
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

async function patterns(ops) {
  const out = {};
  // Cache-aside: miss, load from the origin, cache with the data type's TTL, then hit.
  const cacheKey = key("price", `BTC-USD:${run}`);
  let origin_loads = 0;
  const cached = async () => {
    const hit = await ops.get(cacheKey);
    if (hit !== null) return { value: hit, hit: true };
    origin_loads += 1;
    const value = JSON.stringify({ symbol: "BTC-USD", price: 64000.5 });
    await ops.setEx(cacheKey, 30, value);
    return { value, hit: false };
  };
  const first = await cached();
  const second = await cached();
  out.cache_aside = {
    first_hit: first.hit,
    second_hit: second.hit,
    origin_loads,
    same_value: first.value === second.value,
    ttl_s: await ops.ttl(cacheKey),
  };

  // Pipeline: 50 SET EX then 50 GET in one round trip.
  const count = 50;
  const replies = await ops.pipeline(count);
  const gets = replies.slice(count);
  out.pipeline = {
    commands: replies.length,
    errors: replies.filter((v) => v && typeof v === "object" && "error" in v).length,
    values_match: gets.every((v, i) => v === String(i)),
  };

  // MULTI/EXEC: INCR, INCR, EXPIRE applied together.
  out.multi = { replies: await ops.multi(key("counter", run)) };

  // Rate limiter: 5 per 10 s window; 8 calls, so 5 allowed and 3 denied.
  const limitKey = key("ratelimit", run);
  let allowed = 0;
  let denied = 0;
  for (let i = 0; i < 8; i++) {
    const ok = Number(await ops.eval(RATE_LIMIT, [limitKey], [10000, 5, `${run}-${i}`]));
    if (ok === 1) allowed += 1;
    else denied += 1;
  }
  out.rate_limiter = { allowed, denied };

  // Lock: SET NX PX, a second taker is refused, the owner releases it, then it is free.
  const lockKey = key("lock", run);
  const token = randomBytes(8).toString("hex");
  const acquired = await ops.setNxPx(lockKey, token, 5000);
  const contended = await ops.setNxPx(lockKey, "someone-else", 5000);
  const wrongRelease = Number(await ops.eval(UNLOCK, [lockKey], ["not-the-token"]));
  const released = Number(await ops.eval(UNLOCK, [lockKey], [token]));
  const reacquired = await ops.setNxPx(lockKey, token, 5000);
  await ops.eval(UNLOCK, [lockKey], [token]);
  out.lock = { acquired, contended, wrong_release: wrongRelease, released, reacquired };

  // INFO works for this user (the ready check needs it; so do dashboards).
  try {
    out.info_ok = /redis_version:/.test(await ops.info());
  } catch (err) {
    out.info_ok = false;
    out.info_error = String(err.message);
  }

  const pipeKeys = Array.from({ length: count }, (_, i) => key("pipe", `${run}:${i}`));
  await ops.del(cacheKey, key("counter", run), limitKey, ...pipeKeys);
  return out;
}

async function connected(lib) {
  if (lib === "ioredis") {
    const r = ioredisClient();
    await r.connect();
    return ioredisOps(r);
  }
  if (lib === "node-redis") {
    const c = nodeRedisClient();
    await c.connect();
    return nodeRedisOps(c);
  }
  throw new Error(`unknown library '${lib}': ioredis or node-redis`);
}

function errorCode(err) {
  return String(err?.message ?? err).split(" ")[0];
}

// Sequential writes of 1, 2, 3, ... for `ms` milliseconds; the writer never gives up on its
// own, so what the client library does during a restart is what gets measured.
async function writer(lib, list, ms) {
  let push;
  let close;
  if (lib === "ioredis") {
    const r = ioredisClient();
    await r.connect();
    push = (v) => r.rpush(list, v);
    close = () => r.quit();
  } else {
    const c = nodeRedisClient();
    await c.connect();
    push = (v) => c.rPush(list, v);
    close = () => c.quit();
  }
  const acked = [];
  const errors = [];
  const deadline = Date.now() + ms;
  let value = 0;
  while (Date.now() < deadline) {
    value += 1;
    try {
      await push(String(value));
      acked.push([value, Date.now() / 1000]);
    } catch (err) {
      errors.push({ value, at: Date.now() / 1000, code: errorCode(err), message: String(err.message).slice(0, 200) });
    }
  }
  await close();
  return { acked, errors };
}

// Idle past the server's `timeout` and carry on, as a quiet service does at night. Every
// event the library emits is recorded with its time since the idle began (`error` only when
// there is a listener: without one node-redis throws, which is what a test may want to see).
// REDIS_IDLE_BLOCK=1 blocks the event loop for the idle instead of sleeping, so the client
// learns of the server's close only once its next command is written: the worst case of a
// command sent at the moment Redis closes the connection.
async function idle(lib, ms, rounds) {
  const watched = ["close", "end", "reconnecting", "ready", "ping-interval", ...(errorListener ? ["error"] : [])];
  const events = [];
  let since = Date.now();
  const ops = await connected(lib);
  for (const name of watched) {
    ops.client.on(name, (arg) => events.push({ event: name, at_ms: Date.now() - since, message: arg?.message }));
  }
  const counter = key("idle", run);
  const done = [];
  for (let i = 0; i < rounds; i++) {
    const round = { client_id_before: Number(await ops.clientId()) };
    since = Date.now();
    if (env.REDIS_IDLE_BLOCK === "1") Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    else await new Promise((resolve) => setTimeout(resolve, ms));
    round.idle_ms = Date.now() - since;
    try {
      round.incr = Number(await ops.incr(counter));
    } catch (err) {
      round.incr_error = String(err.message);
    }
    try {
      round.client_id_after = Number(await ops.clientId());
    } catch (err) {
      round.client_id_error = String(err.message);
    }
    round.events = events.splice(0);
    done.push(round);
  }
  // Each INCR applied exactly once, whatever was resent.
  const counted = Number(await ops.get(counter));
  await ops.del(counter);
  await ops.close();
  return { idle_ms: ms, rounds: done, counter: counted, ping_ms: lib === "node-redis" ? pingMs : null };
}

// Log in and watch the client for MS milliseconds: whether connect() settles, how, and how
// often the library tries again. A wrong username/password pair never heals by retrying.
async function login(lib, ms) {
  const client = lib === "ioredis" ? ioredisClient() : nodeRedisClient();
  const errors = [];
  let reconnects = 0;
  client.on("error", (err) => errors.push(String(err.message)));
  client.on("reconnecting", () => {
    reconnects += 1;
  });
  const window = new Promise((resolve) => setTimeout(resolve, ms, "pending"));
  let outcome;
  try {
    outcome = await Promise.race([client.connect().then(() => "connected"), window]);
  } catch (err) {
    outcome = `refused: ${String(err.message).slice(0, 200)}`;
  }
  await window;
  try {
    await client.disconnect();
  } catch {
    // node-redis refuses to disconnect a client that has given up: nothing left to close
  }
  return { window_ms: ms, outcome, error_events: errors.length, errors: [...new Set(errors)], reconnects };
}

async function main() {
  const [lib, mode, ...args] = process.argv.slice(2);
  const result = { library: lib, mode, user: username ?? "default", service };
  if (mode === "patterns") {
    const ops = await connected(lib);
    result.patterns = await patterns(ops);
    await ops.close();
  } else if (mode === "probe") {
    const ops = await connected(lib);
    try {
      result.value = await ops.get(args[0]);
      result.error = null;
    } catch (err) {
      result.error = String(err.message);
    }
    await ops.close();
  } else if (mode === "writer" && (lib === "ioredis" || lib === "node-redis")) {
    Object.assign(result, await writer(lib, args[0], Number(args[1])));
  } else if (mode === "login" && (lib === "ioredis" || lib === "node-redis")) {
    Object.assign(result, await login(lib, Number(args[0])));
  } else if (mode === "idle" && (lib === "ioredis" || lib === "node-redis")) {
    Object.assign(result, await idle(lib, Number(args[0]), Number(args[1])));
  } else {
    throw new Error(`unknown mode '${mode}' for ${lib}`);
  }
  result.warnings = warnings;
  return result;
}

// Exit only once the line is written: a pipe takes a large line in several writes.
const emit = (result, code) => process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
main().then(
  (result) => emit(result, 0),
  (err) => emit({ fatal: String(err?.message ?? err), warnings }, 1),
);
