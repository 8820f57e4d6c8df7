"""The Lua scripts of the Redis state store: each step that decides who gets what is one script.

Redis runs a script without interleaving any other command, so a script is the Redis form of
"under one lock". Times are epoch milliseconds passed in ARGV (the caller's `now`, never the
Redis clock), so tests move time with a fake clock exactly as they do for the memory store.

Per-agent keys are built inside the scripts from the key prefix in ARGV[1]. On Redis Cluster
all keys must then share one slot: give the store a hash-tagged prefix such as "{loopline}:".

Agent keys (P = prefix):
  P agent:<id>           HASH presence, capacity, presence_since, idle_since, last_offered_at,
                         calls_today (times as epoch ms)
  P agent-reserved:<id>  SET of call ids offered to the agent, not yet confirmed
  P agent-active:<id>    SET of call ids the agent is on
  P room-views           HASH agent id -> compact JSON view, for the agents with room only
Agent views come back as {HGETALL of the hash, reserved members, active members}.
"""

from __future__ import annotations

# Shared helpers, prepended to every agent script. `room` is the SET of agents that are
# available with a free slot; `queue_stats` counts it without reading every agent.
# Every script that changes an agent ends with `sync_room`, which also keeps the agent's
# compact view in P room-views while it has room: routing reads that hash whole on every call
# (one command, one string) instead of three commands per agent. The view is the JSON array
# [id, presence, capacity, presence_since, idle_since, last_offered_at, calls_today,
#  reserved ids, active ids] (times in epoch ms, '' when unset; an empty id list is {}).
_AGENT_HELPERS = """
local P = ARGV[1]
local function akey(id) return P .. 'agent:' .. id end
local function rkey(id) return P .. 'agent-reserved:' .. id end
local function ckey(id) return P .. 'agent-active:' .. id end
local function load_of(id)
  return redis.call('SCARD', rkey(id)) + redis.call('SCARD', ckey(id))
end
local function compact_view(id)
  local f = redis.call('HMGET', akey(id), 'presence', 'capacity', 'presence_since',
                       'idle_since', 'last_offered_at', 'calls_today')
  return cjson.encode({id, f[1] or 'offline', f[2] or '1', f[3] or '', f[4] or '', f[5] or '',
                       f[6] or '0', redis.call('SMEMBERS', rkey(id)),
                       redis.call('SMEMBERS', ckey(id))})
end
local function sync_room(id, room)
  local f = redis.call('HMGET', akey(id), 'presence', 'capacity')
  if f[1] == 'available' and load_of(id) < tonumber(f[2]) then
    redis.call('SADD', room, id)
    redis.call('HSET', P .. 'room-views', id, compact_view(id))
  else
    redis.call('SREM', room, id)
    redis.call('HDEL', P .. 'room-views', id)
  end
end
local function view(id)
  return {redis.call('HGETALL', akey(id)), redis.call('SMEMBERS', rkey(id)),
          redis.call('SMEMBERS', ckey(id))}
end
"""

# register_agent: create the agent (offline) or update its capacity, keeping its live state.
# KEYS[1] = P agents (SET of agent ids), KEYS[2] = P agents-with-room (SET)
# ARGV[1] = P, ARGV[2] = agent id, ARGV[3] = capacity
# Returns the agent view.
REGISTER = (
    _AGENT_HELPERS
    + """
local id = ARGV[2]
redis.call('HSETNX', akey(id), 'presence', 'offline')
redis.call('HSET', akey(id), 'capacity', ARGV[3])
redis.call('SADD', KEYS[1], id)
sync_room(id, KEYS[2])
return view(id)
"""
)

# set_presence: a change of presence stamps presence_since; becoming available with no load
# stamps idle_since (longest-idle counts from there).
# KEYS[1] = P agents-with-room
# ARGV[1] = P, ARGV[2] = agent id, ARGV[3] = presence, ARGV[4] = now ms
# Returns the agent view, or nil for an unknown agent.
SET_PRESENCE = (
    _AGENT_HELPERS
    + """
local id = ARGV[2]
local current = redis.call('HGET', akey(id), 'presence')
if not current then return false end
if current ~= ARGV[3] then
  redis.call('HSET', akey(id), 'presence', ARGV[3], 'presence_since', ARGV[4])
  if ARGV[3] == 'available' and load_of(id) == 0 then
    redis.call('HSET', akey(id), 'idle_since', ARGV[4])
  end
end
sync_room(id, KEYS[1])
return view(id)
"""
)

# reserve: walk the candidates in order; the first who is available with
# reserved + active < capacity gets the call as a reservation that expires at ARGV[4].
# "Available with room" is membership of agents-with-room, which every script that changes
# presence, capacity or load keeps exact: one SISMEMBER per candidate.
# A call that already holds a slot (reserved or active) keeps it: its agent is returned and
# nothing changes, so a retried webhook cannot take two slots.
# KEYS[1] = P reservations (ZSET call id -> expires ms), KEYS[2] = P holders (HASH call id ->
#           agent id, for reserved and active calls), KEYS[3] = P agents-with-room
# ARGV[1] = P, ARGV[2] = call id, ARGV[3] = now ms, ARGV[4] = expires ms,
# ARGV[5..] = candidate agent ids in order of preference
# Returns the agent id, or nil when nobody has room.
RESERVE = (
    _AGENT_HELPERS
    + """
local call = ARGV[2]
local held = redis.call('HGET', KEYS[2], call)
if held then return held end
for i = 5, #ARGV do
  local id = ARGV[i]
  if redis.call('SISMEMBER', KEYS[3], id) == 1 then
    redis.call('SADD', rkey(id), call)
    redis.call('ZADD', KEYS[1], ARGV[4], call)
    redis.call('HSET', KEYS[2], call, id)
    redis.call('HSET', akey(id), 'last_offered_at', ARGV[3])
    sync_room(id, KEYS[3])
    return id
  end
end
return false
"""
)

# confirm: reserved -> active while the reservation has not expired (expires > now); an agent
# whose load reaches capacity turns from available to busy. Confirming an active call again
# succeeds and changes nothing.
# KEYS[1] = P reservations, KEYS[2] = P holders, KEYS[3] = P agents-with-room
# ARGV[1] = P, ARGV[2] = call id, ARGV[3] = agent id, ARGV[4] = now ms
# Returns 1 when the agent now holds the call as active, 0 otherwise.
CONFIRM = (
    _AGENT_HELPERS
    + """
local call, id = ARGV[2], ARGV[3]
if redis.call('SISMEMBER', ckey(id), call) == 1 then return 1 end
if redis.call('SISMEMBER', rkey(id), call) == 0 then return 0 end
local expires = redis.call('ZSCORE', KEYS[1], call)
if not expires or tonumber(expires) <= tonumber(ARGV[4]) then return 0 end
redis.call('SREM', rkey(id), call)
redis.call('SADD', ckey(id), call)
redis.call('ZREM', KEYS[1], call)
local f = redis.call('HMGET', akey(id), 'presence', 'capacity')
if f[1] == 'available' and load_of(id) >= tonumber(f[2]) then
  redis.call('HSET', akey(id), 'presence', 'busy', 'presence_since', ARGV[4])
end
sync_room(id, KEYS[3])
return 1
"""
)

# release: free the agent's slot for the call, reserved or active. Busy turns available; no
# load left stamps idle_since; an active call counts in calls_today.
# KEYS[1] = P reservations, KEYS[2] = P holders, KEYS[3] = P agents-with-room
# ARGV[1] = P, ARGV[2] = call id, ARGV[3] = agent id, ARGV[4] = now ms
# Returns the agent view, or nil when the agent held no slot for the call.
RELEASE = (
    _AGENT_HELPERS
    + """
local call, id = ARGV[2], ARGV[3]
if redis.call('SREM', rkey(id), call) == 1 then
  redis.call('ZREM', KEYS[1], call)
elseif redis.call('SREM', ckey(id), call) == 1 then
  redis.call('HINCRBY', akey(id), 'calls_today', 1)
else
  return false
end
if redis.call('HGET', KEYS[2], call) == id then redis.call('HDEL', KEYS[2], call) end
if redis.call('HGET', akey(id), 'presence') == 'busy' then
  redis.call('HSET', akey(id), 'presence', 'available', 'presence_since', ARGV[4])
end
if load_of(id) == 0 then redis.call('HSET', akey(id), 'idle_since', ARGV[4]) end
sync_room(id, KEYS[3])
return view(id)
"""
)

# claim_expired: take up to ARGV[3] reservations with expires <= now, earliest first, and
# remove them in the same step, so each goes to exactly one caller. The agent's idle_since is
# left alone: an offer that rang out did not end an idle spell.
# KEYS[1] = P reservations, KEYS[2] = P holders, KEYS[3] = P agents-with-room
# ARGV[1] = P, ARGV[2] = now ms, ARGV[3] = limit
# Returns a flat list: call id, agent id, expires ms, call id, ...
CLAIM_EXPIRED = (
    _AGENT_HELPERS
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES',
                       'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  local call = due[i]
  redis.call('ZREM', KEYS[1], call)
  local id = redis.call('HGET', KEYS[2], call)
  if id then
    redis.call('HDEL', KEYS[2], call)
    if redis.call('SREM', rkey(id), call) == 1 then
      sync_room(id, KEYS[3])
      out[#out + 1] = call
      out[#out + 1] = id
      out[#out + 1] = due[i + 1]
    end
  end
end
return out
"""
)

# agent views: the listed agents, or every registered agent when none is listed.
# KEYS[1] = P agents
# ARGV[1] = P, ARGV[2..] = agent ids
# Returns a list of {agent id, view...}; unknown agents are left out.
AGENT_VIEWS = (
    _AGENT_HELPERS
    + """
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('SMEMBERS', KEYS[1])
end
local out = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', akey(id)) == 1 then
    local v = view(id)
    out[#out + 1] = {id, v[1], v[2], v[3]}
  end
end
return out
"""
)

# agents with room: the compact views of every agent available with a free slot, one per
# line (cjson escapes newlines inside strings, so a line is always one whole view).
# KEYS[1] = P room-views
# Returns one string, '' when no agent has room.
ROOM_VIEWS = """
return table.concat(redis.call('HVALS', KEYS[1]), '\\n')
"""

# delete_call: remove a live call and its provider index entry (only if the index still
# points at this call).
# KEYS[1] = P call:<call id> (STRING, CallState JSON)
# ARGV[1] = P pcall: (index key prefix), ARGV[2] = call id
# Returns 1 when the call existed.
DELETE_CALL = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, doc = pcall(cjson.decode, raw)
if ok and type(doc) == 'table' and type(doc.provider_call_id) == 'string' then
  local index = ARGV[1] .. doc.provider_call_id
  if redis.call('GET', index) == ARGV[2] then redis.call('DEL', index) end
end
redis.call('DEL', KEYS[1])
return 1
"""

# claim_queued: remove one call from its queue; ZREM answers 1 to exactly one caller. The queue
# leaves the set of queue names when it empties, in the same step, so `enqueue` (a MULTI
# that adds it back) cannot interleave.
# KEYS[1] = P queue:<name> (ZSET call id -> service score), KEYS[2] = P queue-since:<name>
#           (ZSET call id -> enqueued ms), KEYS[3] = P queue-items:<name> (HASH call id ->
#           QueuedCall JSON), KEYS[4] = P queues (SET of names with calls)
# ARGV[1] = queue name, ARGV[2] = call id
# Returns 1 for the winner, 0 otherwise.
CLAIM_QUEUED = """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return 1
"""

# queued: the first ARGV[1] calls of a queue in service order, read in one step.
# KEYS[1] = P queue:<name>, KEYS[2] = P queue-items:<name>
# ARGV[1] = limit
# Returns a list of QueuedCall JSON strings.
QUEUED = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[2], id)
  if raw then out[#out + 1] = raw end
end
return out
"""
