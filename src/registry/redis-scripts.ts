/**
 * The Lua scripts that give Redis the registry's etcd-shaped semantics. Each registry operation is
 * ONE script, and Redis runs a script atomically, so a transaction's compares and its writes cannot
 * interleave with anyone else's (exactly what an etcd txn promises).
 *
 * Store layout, every key under the store prefix `P` (ARGV[1]):
 *
 * | key | type | what |
 * | --- | --- | --- |
 * | `P rev` | string | the global revision (a fresh store is at 1; the first write yields 2) |
 * | `P id` | string | a store id set on the first write: a changed id means the data was lost |
 * | `P compact` | string | watches must start at or after this revision (trimmed history) |
 * | `P kv:<key>` | hash | `v` value, `c` create revision, `m` mod revision, `l` lease ('0' for none) |
 * | `P keys` | sorted set | every key, score 0: ZRANGEBYLEX lists a prefix in byte order |
 * | `P leases` | sorted set | lease id -> deadline, in ms of the Redis server's clock (TIME) |
 * | `P lttl` | hash | lease id -> TTL in seconds |
 * | `P lkeys:<id>` | set | the keys attached to a lease |
 * | `P leaseid` | string | the last lease id handed out |
 * | `P log` | stream | one entry per revision, id `<rev>-1`: its events, 5 fields each (e, k, v, c, l) |
 *
 * Every script first reaps the leases whose deadline passed by Redis's clock (deleting their keys,
 * one revision per lease), so a lease is dead the moment its deadline passes whoever looks first:
 * a compare can never see a key of an expired lease. Every change appends to the log and PUBLISHes
 * the new revision on `P events`, so watchers wake at once; they read the log, so a lost message
 * costs only latency until their next poll.
 *
 * Redis 7 replicates scripts by their effects, which is what makes calling TIME before a write legal.
 */

/** Shared prelude: helpers every script uses. `P` is the store prefix. */
const PRELUDE = `
local P = ARGV[1]
local HISTORY = 10000

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function current_rev()
  return tonumber(redis.call('GET', P .. 'rev') or '1')
end

-- Applies changes ({t='p'|'d', k, v, l}) as one revision; deletes of missing keys change nothing.
-- Returns the new revision, or the current one when nothing changed (as etcd does).
local function apply(changes)
  local fields = {}
  local rev = current_rev() + 1
  local n = 0
  for _, ch in ipairs(changes) do
    local hk = P .. 'kv:' .. ch.k
    local prev = redis.call('HMGET', hk, 'v', 'c', 'l')
    local exists = prev[2] ~= false
    if ch.t == 'p' or exists then
      n = n + 1
      if exists and prev[3] ~= '0' then redis.call('SREM', P .. 'lkeys:' .. prev[3], ch.k) end
      if ch.t == 'p' then
        local c = exists and prev[2] or tostring(rev)
        redis.call('HSET', hk, 'v', ch.v, 'c', c, 'm', tostring(rev), 'l', ch.l)
        redis.call('ZADD', P .. 'keys', 0, ch.k)
        if ch.l ~= '0' then redis.call('SADD', P .. 'lkeys:' .. ch.l, ch.k) end
        for _, f in ipairs({'e', 'p', 'k', ch.k, 'v', ch.v, 'c', c, 'l', ch.l}) do table.insert(fields, f) end
      else
        redis.call('DEL', hk)
        redis.call('ZREM', P .. 'keys', ch.k)
        for _, f in ipairs({'e', 'd', 'k', ch.k, 'v', prev[1], 'c', prev[2], 'l', '0'}) do table.insert(fields, f) end
      end
    end
  end
  if n == 0 then return rev - 1 end
  redis.call('SET', P .. 'rev', tostring(rev))
  if redis.call('EXISTS', P .. 'id') == 0 then
    local t = redis.call('TIME')
    redis.call('SET', P .. 'id', t[1] .. '.' .. t[2])
  end
  redis.call('XADD', P .. 'log', tostring(rev) .. '-1', unpack(fields))
  if redis.call('XLEN', P .. 'log') > HISTORY + 500 then
    redis.call('XTRIM', P .. 'log', 'MAXLEN', HISTORY)
    local first = redis.call('XRANGE', P .. 'log', '-', '+', 'COUNT', 1)[1]
    if first then redis.call('SET', P .. 'compact', string.match(first[1], '^(%d+)')) end
  end
  redis.call('PUBLISH', P .. 'events', tostring(rev))
  return rev
end

-- Deletes a lease and every key under it, in one revision. Unknown ids are ignored.
local function revoke(id)
  if not redis.call('ZSCORE', P .. 'leases', id) then return end
  local keys = redis.call('SMEMBERS', P .. 'lkeys:' .. id)
  table.sort(keys)
  redis.call('ZREM', P .. 'leases', id)
  redis.call('HDEL', P .. 'lttl', id)
  redis.call('DEL', P .. 'lkeys:' .. id)
  local changes = {}
  for _, k in ipairs(keys) do table.insert(changes, {t = 'd', k = k}) end
  apply(changes)
end

-- Revokes every lease whose deadline passed by this server's clock.
local function reap(now)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', '(' .. now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do revoke(id) end
end

local function lease_alive(id)
  return id == '0' or redis.call('ZSCORE', P .. 'leases', id) ~= false
end
`;

/** Reaps; then returns {rev, k1, v1, c1, m1, l1, ...} of keys in the ZRANGEBYLEX range ARGV[2]..ARGV[3]. */
export const LIST = `${PRELUDE}
reap(now_ms())
local out = {current_rev()}
local names = redis.call('ZRANGEBYLEX', P .. 'keys', ARGV[2], ARGV[3])
for _, k in ipairs(names) do
  local h = redis.call('HMGET', P .. 'kv:' .. k, 'v', 'c', 'm', 'l')
  if h[2] then
    table.insert(out, k); table.insert(out, h[1]); table.insert(out, h[2]); table.insert(out, h[3]); table.insert(out, h[4])
  end
end
return out
`;

/**
 * A transaction. ARGV[2] = number of compares, then (key, target c|m|v, value) each; then the number
 * of ops, then (type p|d, key, value, lease) each. Returns {1|0, revision}; a put under a dead lease
 * fails the whole script with LEASELOST <id>.
 */
export const TXN = `${PRELUDE}
reap(now_ms())
local i = 2
local nc = tonumber(ARGV[i]); i = i + 1
local ok = true
for _ = 1, nc do
  local key, target, want = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  local h = redis.call('HMGET', P .. 'kv:' .. key, 'v', 'c', 'm')
  if target == 'v' then
    if h[2] == false or h[1] ~= want then ok = false end
  elseif target == 'c' then
    if (h[2] or '0') ~= want then ok = false end
  else
    if (h[3] or '0') ~= want then ok = false end
  end
end
if not ok then return {0, current_rev()} end
local no = tonumber(ARGV[i]); i = i + 1
local changes = {}
for _ = 1, no do
  local ch = {t = ARGV[i], k = ARGV[i + 1], v = ARGV[i + 2], l = ARGV[i + 3]}; i = i + 4
  if ch.t == 'p' and not lease_alive(ch.l) then return redis.error_reply('LEASELOST ' .. ch.l) end
  table.insert(changes, ch)
end
return {1, apply(changes)}
`;

/** Deletes ARGV[2]; returns {existed 1|0, revision}. */
export const DELETE = `${PRELUDE}
reap(now_ms())
local existed = redis.call('EXISTS', P .. 'kv:' .. ARGV[2])
return {existed, apply({{t = 'd', k = ARGV[2]}})}
`;

/** Grants a lease of ARGV[2] seconds; returns its id. */
export const GRANT = `${PRELUDE}
local now = now_ms()
reap(now)
local ttl = tonumber(ARGV[2])
local id = redis.call('INCR', P .. 'leaseid')
redis.call('ZADD', P .. 'leases', now + ttl * 1000, id)
redis.call('HSET', P .. 'lttl', id, ttl)
return id
`;

/** Compare-and-renew: renews lease ARGV[2] only if it is still alive; returns its TTL, or -1 when it is gone. */
export const KEEPALIVE = `${PRELUDE}
local now = now_ms()
reap(now)
local id = ARGV[2]
if not redis.call('ZSCORE', P .. 'leases', id) then return -1 end
local ttl = tonumber(redis.call('HGET', P .. 'lttl', id) or '0')
redis.call('ZADD', P .. 'leases', 'XX', now + ttl * 1000, id)
return ttl
`;

/** Revokes lease ARGV[2] (its keys go in one revision); returns the revision. */
export const REVOKE = `${PRELUDE}
reap(now_ms())
revoke(ARGV[2])
return current_rev()
`;

/**
 * What a watcher needs, in one round trip: reaps, then returns {rev, compact, store id, ms until the
 * next lease deadline (-1: no lease), lease count, entries...} with up to ARGV[3] log entries from
 * revision ARGV[2] on, each as {id, fields}.
 */
export const POLL = `${PRELUDE}
local now = now_ms()
reap(now)
local nextDeadline = -1
local first = redis.call('ZRANGE', P .. 'leases', 0, 0, 'WITHSCORES')
if first[2] then nextDeadline = math.max(0, tonumber(first[2]) - now) end
local out = {current_rev(), tonumber(redis.call('GET', P .. 'compact') or '0'), redis.call('GET', P .. 'id') or '',
  nextDeadline, redis.call('ZCARD', P .. 'leases')}
if tonumber(ARGV[3]) > 0 then
  local entries = redis.call('XRANGE', P .. 'log', ARGV[2] .. '-0', '+', 'COUNT', tonumber(ARGV[3]))
  for _, e in ipairs(entries) do table.insert(out, e) end
end
return out
`;

/** Trims history before revision ARGV[2] (as etcd's compaction would); returns the compact revision. */
export const COMPACT = `${PRELUDE}
local rev = tonumber(ARGV[2])
local old = tonumber(redis.call('GET', P .. 'compact') or '0')
if rev > old then
  redis.call('XTRIM', P .. 'log', 'MINID', tostring(rev) .. '-0')
  redis.call('SET', P .. 'compact', tostring(rev))
  return rev
end
return old
`;
