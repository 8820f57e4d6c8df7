"""The journey store in Redis: every lease step is one Lua script, so nodes never race.

Key layout (P = prefix, "loopline:journey:" by default; <pool> is the pool's name):
  P pool:<pool>:numbers        SET   configured numbers
  P pool:<pool>:free           ZSET  number -> released at (epoch ms; 0 never used, -1 spent)
  P pool:<pool>:active         ZSET  number -> lease expiry (epoch ms)
  P pool:<pool>:lease:<number> HASH  s (session), v (visitor), start, seen, exp (ms), r (region)
  P pool:<pool>:visitors       HASH  visitor -> number (one number per visitor)
  P pool:<pool>:hist:<number>  LIST  past holders "s|v|start|seen|exp|r", newest first, capped
  P pool:<pool>:stats          HASH  leases, renewals, fallbacks, rate (per s), rate_at (ms)
  P session:<id>               LIST  touches (JSON), newest SESSION_TOUCH_CAP, expiring
  P known:<id>                 SET   hashed caller numbers seen on the session

Times are the caller's `now` in epoch ms passed as ARGV strings and stored verbatim: Lua
formats large numbers in scientific notation, so the scripts never compute a stored time.
Ids are checked at the edge (letters, digits, '-', '_'), so '|' never occurs inside a field.
On Redis Cluster give a hash-tagged prefix ("{journey}:") so each script's keys share a slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from loopline.journey.pool import Grant, GrantKind, Holding, PoolUse, lease_rate
from loopline.journey.store import (
    SESSION_TOUCH_CAP,
    SESSION_TTL_S,
    JourneyStore,
    PoolSpec,
    epoch_s,
)
from loopline.state.encoding import to_ms
from loopline.state.redis_client import connect, guarded, require_text_replies, text

RATE_TAU_S = 3600.0

# Shared by the scripts: KEYS[1] free, KEYS[2] active, KEYS[3] visitors, KEYS[4] stats;
# ARGV[1] lease-key prefix, ARGV[2] history-key prefix, ARGV[3] history length, ARGV[4] now ms.
_HELPERS = """
local function push_history(n, h)
  local hk = ARGV[2] .. n
  redis.call('LPUSH', hk, table.concat({h[1], h[2], h[3], h[4], h[5], h[6] or ''}, '|'))
  redis.call('LTRIM', hk, 0, tonumber(ARGV[3]) - 1)
end
local function reclaim()
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 500)
  for _, n in ipairs(due) do
    local lk = ARGV[1] .. n
    local h = redis.call('HMGET', lk, 's', 'v', 'start', 'seen', 'exp', 'r')
    if h[1] then
      push_history(n, h)
      if redis.call('HGET', KEYS[3], h[2]) == n then redis.call('HDEL', KEYS[3], h[2]) end
      redis.call('DEL', lk)
      redis.call('ZADD', KEYS[1], h[5], n)
    end
    redis.call('ZREM', KEYS[2], n)
  end
end
-- The free number to lease: the least recently released, or (zone-diverse reuse, window
-- `k` > 1, `region` known, no spent number first) the oldest of the `k` oldest whose last
-- holder's region differs from `region` or which nobody held. nil when none is free.
local function take_free(region, k)
  if k > 1 and region ~= '' then
    local cands = redis.call('ZRANGE', KEYS[1], 0, k - 1, 'WITHSCORES')
    if #cands > 0 and tonumber(cands[2]) >= 0 then
      for i = 1, #cands, 2 do
        local n = cands[i]
        local last = redis.call('LINDEX', ARGV[2] .. n, 0)
        local r = last and string.match(last, '[^|]*$')
        if (not last) or (r ~= '' and r ~= region) then
          redis.call('ZREM', KEYS[1], n)
          return n
        end
      end
    end
  end
  local first = redis.call('ZPOPMIN', KEYS[1])
  if #first == 0 then return nil end
  return first[1]
end
local function lease_view(kind, n)
  local h = redis.call('HMGET', ARGV[1] .. n, 's', 'v', 'start', 'seen', 'exp', 'r')
  return {kind, n, h[1], h[2], h[3], h[4], h[5], h[6] or ''}
end
"""

# acquire. ARGV[5] session, ARGV[6] visitor, ARGV[7] expiry ms (now + hold), ARGV[8] region,
# ARGV[9] rate time constant (s), ARGV[10] zone-diverse reuse window. Returns {kind, number, s,
# v, start, seen, exp, r} or {'fallback'}.
ACQUIRE = (
    _HELPERS
    + """
reclaim()
local session, visitor, now, exp = ARGV[5], ARGV[6], ARGV[4], ARGV[7]
local held = redis.call('HGET', KEYS[3], visitor)
if held then
  local lk = ARGV[1] .. held
  local cur = redis.call('HMGET', lk, 's', 'v', 'start', 'seen', 'exp', 'r')
  if cur[1] ~= session then
    cur[5] = now
    push_history(held, cur)
    redis.call('HSET', lk, 's', session, 'start', now, 'r', ARGV[8])
  end
  redis.call('HSET', lk, 'seen', now, 'exp', exp)
  redis.call('ZADD', KEYS[2], exp, held)
  redis.call('HINCRBY', KEYS[4], 'renewals', 1)
  return lease_view('renewed', held)
end
local n = take_free(ARGV[8], tonumber(ARGV[10]))
if not n then
  redis.call('HINCRBY', KEYS[4], 'fallbacks', 1)
  return {'fallback'}
end
redis.call('HSET', ARGV[1] .. n, 's', session, 'v', visitor, 'start', now, 'seen', now,
  'exp', exp, 'r', ARGV[8])
redis.call('ZADD', KEYS[2], exp, n)
redis.call('HSET', KEYS[3], visitor, n)
redis.call('HINCRBY', KEYS[4], 'leases', 1)
local tau = tonumber(ARGV[9])
local st = redis.call('HMGET', KEYS[4], 'rate', 'rate_at')
local rate = tonumber(st[1] or '0')
local dt = (tonumber(now) - tonumber(st[2] or now)) / 1000
if dt > 0 then rate = rate * math.exp(-dt / tau) end
redis.call('HSET', KEYS[4], 'rate', tostring(rate + 1 / tau), 'rate_at', now)
return lease_view('granted', n)
"""
)

# heartbeat. ARGV[5] session, ARGV[6] visitor, ARGV[7] expiry ms. Returns the lease view or nil.
HEARTBEAT = (
    _HELPERS
    + """
reclaim()
local held = redis.call('HGET', KEYS[3], ARGV[6])
if not held then return false end
local lk = ARGV[1] .. held
if redis.call('HGET', lk, 's') ~= ARGV[5] then return false end
redis.call('HSET', lk, 'seen', ARGV[4], 'exp', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[7], held)
return lease_view('renewed', held)
"""
)

# reclaim only (before reading use). Returns the count of active leases.
RECLAIM = (
    _HELPERS
    + """
reclaim()
return redis.call('ZCARD', KEYS[2])
"""
)

# ensure_pool. KEYS[1] numbers, KEYS[2] free; ARGV numbers. New numbers join as never used.
ENSURE = """
local added = 0
for _, n in ipairs(ARGV) do
  if redis.call('SADD', KEYS[1], n) == 1 then
    redis.call('ZADD', KEYS[2], 0, n)
    added = added + 1
  end
end
return added
"""


def _holding(number: str, fields: Sequence[str]) -> Holding:
    s, v, start, seen, exp, region = fields
    return Holding(
        number=number,
        session_id=s,
        visitor_id=v,
        start=int(start) / 1000,
        last_seen=int(seen) / 1000,
        expires=int(exp) / 1000,
        region=region,
    )


# forget (data-subject erasure). KEYS[1] numbers, KEYS[2] free, KEYS[3] active, KEYS[4]
# visitors; ARGV[1] lease-key prefix, ARGV[2] history-key prefix, ARGV[3] now ms, ARGV[4..]
# "v:<visitor>" or "s:<session>". A current lease of theirs ends now; their history entries
# go. Returns how many holdings went.
FORGET = """
local want_v, want_s = {}, {}
for i = 4, #ARGV do
  local a = ARGV[i]
  if string.sub(a, 1, 2) == 'v:' then want_v[string.sub(a, 3)] = true
  else want_s[string.sub(a, 3)] = true end
end
local gone = 0
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local lk = ARGV[1] .. n
  local h = redis.call('HMGET', lk, 's', 'v')
  if h[1] and (want_s[h[1]] or want_v[h[2]]) then
    if redis.call('HGET', KEYS[4], h[2]) == n then redis.call('HDEL', KEYS[4], h[2]) end
    redis.call('DEL', lk)
    redis.call('ZREM', KEYS[3], n)
    redis.call('ZADD', KEYS[2], ARGV[3], n)
    gone = gone + 1
  end
  local hk = ARGV[2] .. n
  for _, e in ipairs(redis.call('LRANGE', hk, 0, -1)) do
    local sep = string.find(e, '|', 1, true)
    if sep then
      local s = string.sub(e, 1, sep - 1)
      local rest = string.sub(e, sep + 1)
      local sep2 = string.find(rest, '|', 1, true)
      local v = sep2 and string.sub(rest, 1, sep2 - 1) or rest
      if want_s[s] or want_v[v] then
        gone = gone + redis.call('LREM', hk, 0, e)
      end
    end
  end
end
return gone
"""


class RedisJourneyStore(JourneyStore):
    """Journey state in Redis. The store owns `client` and closes it in `close()`."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "loopline:journey:") -> None:
        require_text_replies(client)
        self._r = client
        self._p = prefix
        self._specs: dict[str, PoolSpec] = {}
        self._acquire = client.register_script(ACQUIRE)
        self._heartbeat = client.register_script(HEARTBEAT)
        self._reclaim = client.register_script(RECLAIM)
        self._ensure = client.register_script(ENSURE)
        self._forget = client.register_script(FORGET)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "loopline:journey:") -> RedisJourneyStore:
        return cls(connect(url), prefix=prefix)

    async def close(self) -> None:
        await self._r.aclose()

    def _k(self, pool: str, name: str) -> str:
        return f"{self._p}pool:{pool}:{name}"

    def _spec(self, pool: str) -> PoolSpec:
        try:
            return self._specs[pool]
        except KeyError:
            raise KeyError(f"unknown pool {pool!r}") from None

    def _lease_keys(self, pool: str) -> list[str]:
        return [self._k(pool, n) for n in ("free", "active", "visitors", "stats")]

    def _lease_args(self, pool: str, now: datetime) -> list[str]:
        spec = self._spec(pool)
        return [
            self._k(pool, "lease:"),
            self._k(pool, "hist:"),
            str(spec.history),
            str(to_ms(now)),
        ]

    async def ensure_pool(self, spec: PoolSpec) -> None:
        self._specs[spec.name] = spec
        await guarded(
            "ensure_pool",
            self._ensure(
                keys=[self._k(spec.name, "numbers"), self._k(spec.name, "free")],
                args=list(spec.numbers),
            ),
        )

    async def acquire(
        self, pool: str, session_id: str, visitor_id: str, now: datetime, region: str = ""
    ) -> Grant:
        spec = self._spec(pool)
        args = [
            *self._lease_args(pool, now),
            session_id,
            visitor_id,
            str(to_ms(now) + round(spec.idle_hold_s * 1000)),
            region,
            str(RATE_TAU_S),
            str(spec.zone_window),
        ]
        reply: list[Any] = await guarded(
            "acquire", self._acquire(keys=self._lease_keys(pool), args=args)
        )
        if reply[0] == "fallback":
            return Grant("fallback", None)
        kind: GrantKind = "renewed" if reply[0] == "renewed" else "granted"
        return Grant(kind, reply[1], _holding(reply[1], reply[2:]))

    async def heartbeat(
        self, pool: str, session_id: str, visitor_id: str, now: datetime
    ) -> Holding | None:
        spec = self._spec(pool)
        args = [
            *self._lease_args(pool, now),
            session_id,
            visitor_id,
            str(to_ms(now) + round(spec.idle_hold_s * 1000)),
        ]
        reply: list[Any] | None = await guarded(
            "heartbeat", self._heartbeat(keys=self._lease_keys(pool), args=args)
        )
        if not reply:
            return None
        return _holding(reply[1], reply[2:])

    async def holdings(self, pool: str, number: str) -> list[Holding]:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hmget(self._k(pool, f"lease:{number}"), ["s", "v", "start", "seen", "exp", "r"])
            pipe.lrange(self._k(pool, f"hist:{number}"), 0, -1)
            current, past = await guarded("holdings", pipe.execute())
        out: list[Holding] = []
        if current[0] is not None:
            out.append(_holding(number, [c or "" for c in current]))
        out.extend(_holding(number, line.split("|")) for line in past)
        return out

    async def mark_spent(self, pool: str, number: str) -> bool:
        changed = await guarded(
            "mark_spent", self._r.zadd(self._k(pool, "free"), {number: -1}, xx=True, ch=True)
        )
        return bool(changed)

    async def use(self, pool: str, now: datetime) -> PoolUse:
        spec = self._spec(pool)
        in_use = int(
            await guarded(
                "use",
                self._reclaim(keys=self._lease_keys(pool), args=self._lease_args(pool, now)),
            )
        )
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zcard(self._k(pool, "free"))
            pipe.hgetall(self._k(pool, "stats"))
            free, stats = await guarded("use", pipe.execute())
        rate_at = int(stats.get("rate_at", 0)) / 1000
        return PoolUse(
            size=len(spec.numbers),
            in_use=in_use,
            free=int(free),
            leases=int(stats.get("leases", 0)),
            renewals=int(stats.get("renewals", 0)),
            fallbacks=int(stats.get("fallbacks", 0)),
            lease_rate_per_s=lease_rate(
                float(stats.get("rate", 0.0)), rate_at, epoch_s(now), RATE_TAU_S
            ),
        )

    async def append_touches(self, session_id: str, touches: Sequence[str]) -> None:
        if not touches:
            return
        key = f"{self._p}session:{session_id}"
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *touches)
            pipe.ltrim(key, -SESSION_TOUCH_CAP, -1)
            pipe.expire(key, SESSION_TTL_S)
            await guarded("append_touches", pipe.execute())

    async def touches(self, session_id: str) -> list[str]:
        items = await guarded("touches", self._r.lrange(f"{self._p}session:{session_id}", 0, -1))
        return [text(i) for i in items]

    async def add_known_caller(self, session_id: str, caller_key: str) -> None:
        key = f"{self._p}known:{session_id}"
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.sadd(key, caller_key)
            pipe.expire(key, SESSION_TTL_S)
            await guarded("add_known_caller", pipe.execute())

    async def known_callers(self, session_id: str) -> set[str]:
        members = await guarded("known_callers", self._r.smembers(f"{self._p}known:{session_id}"))
        return {text(m) for m in members}

    async def forget(self, visitors: set[str], sessions: set[str], now: datetime) -> int:
        marks = [f"v:{v}" for v in sorted(visitors)] + [f"s:{s}" for s in sorted(sessions)]
        gone = 0
        if marks:
            for pool in self._specs:
                keys = [self._k(pool, n) for n in ("numbers", "free", "active", "visitors")]
                args = [self._k(pool, "lease:"), self._k(pool, "hist:"), str(to_ms(now)), *marks]
                gone += int(await guarded("forget", self._forget(keys=keys, args=args)))
        for session_id in sessions:
            keys = [f"{self._p}session:{session_id}", f"{self._p}known:{session_id}"]
            gone += int(await guarded("forget", self._r.delete(*keys)))
        return gone

    async def sessions_of(self, visitors: set[str]) -> set[str]:
        found: set[str] = set()
        for pool, spec in self._specs.items():
            for number in spec.numbers:
                holdings = await self.holdings(pool, number)
                found |= {h.session_id for h in holdings if h.visitor_id in visitors}
        return found
