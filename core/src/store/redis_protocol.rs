//! The Redis protocol of the Store, shared by every backend that speaks Redis: the native
//! host's `RedisStore` (RESP over TCP) and [`super::upstash::UpstashStore`] (Upstash's REST
//! API, on both hosts). The key layout and the Lua scripts are written once, here; each
//! backend only carries calls to the server and decodes replies. Pure data and pure functions:
//! nothing here does I/O, so it builds for every target.
//!
//! Key layout (all keys are plain byte strings; store keys are used verbatim after the prefix):
//! - `r:{key}`   a record: a Redis string (the value), TTL via `PX`;
//! - `ri`        the record index: a ZSET, every member scored 0, member = store key, so
//!   `ZRANGEBYLEX` lists keys in byte order (SCAN is neither ordered nor cheap);
//! - `rx`        the expiry index: a ZSET, member = store key with a TTL, score = when it
//!   expires (ms), so writes can find index members whose record has expired and drop them;
//! - `c:{key}`   a counter: a Redis integer string, TTL set only when it is created;
//! - `l:{log}`   a log: a ZSET scored by `at_ms`, member = 20-digit `at_ms` ++ 16-digit
//!   sequence ++ data (the sequence from `ls:{log}` keeps append order among equal times and
//!   makes members unique; the digits give back `at_ms` exactly, without a float);
//! - `ls:{log}`  the log's append sequence;
//! - `s:{key}`   a lease set: a ZSET, member = holder, score = when its lease expires (ms, the
//!   server's clock); expired members are pruned before counting, and the key's own expiry is
//!   moved to its latest lease, so an abandoned set disappears by itself.
//!
//! Values (record values, log data) are opaque bytes to the scripts: `RedisStore` stores them
//! raw, `UpstashStore` stores them as base64 text (JSON cannot carry raw bytes), so the two do
//! not read each other's records and logs (counters are plain integers in both).
//!
//! The scripts touch keys they compute (`r:..` from index members), so this needs a single
//! primary (standalone, primary + replicas, ElastiCache with cluster mode disabled, Upstash,
//! whose scripts take its global lock by default), not Redis Cluster. Every script argument
//! except values is UTF-8 text, so the calls can travel as JSON.

use std::borrow::Cow;

use super::{BatchOp, BatchOutcome, CapOutcome};

/// Key prefix of records.
pub const RECORD: &str = "r:";
/// The record index (ZSET of store keys, all scored 0).
pub const RECORD_INDEX: &str = "ri";
/// The expiry index (ZSET of store keys with a TTL, scored by expiry time in ms).
pub const EXPIRY_INDEX: &str = "rx";
/// Key prefix of counters.
pub const COUNTER: &str = "c:";
/// Key prefix of logs.
pub const LOG: &str = "l:";
/// Key prefix of log append sequences.
pub const LOG_SEQUENCE: &str = "ls:";
/// Key prefix of lease sets.
pub const LEASE_SET: &str = "s:";

/// Script arguments per batch op (kind and three operands).
pub const BATCH_ARGS_PER_OP: usize = 4;

/// Digits of `at_ms` at the front of a log member.
pub const AT_DIGITS: usize = 20;
/// Digits of the append sequence after `at_ms` in a log member.
pub const SEQ_DIGITS: usize = 16;

/// How many expired index members one write may clean up. More than one, so cleaning keeps
/// ahead of TTL'd writes that leave members behind.
pub const PRUNE_BATCH: u32 = 32;

/// Index members read per step while listing (expired ones are skipped, so a listing may need
/// more than `limit`).
pub const LIST_PAGE_MAX: usize = 256;

/// TTLs are clamped to this (100 years): Redis refuses expiry times that overflow, and a TTL
/// this long is "forever" anyway. A TTL of 0 becomes 1 ms (Redis refuses `PX 0`).
pub const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Writes a record and keeps both indexes in step with it, in one atomic step; then drops a few
/// index members whose record has expired (otherwise every TTL'd record, e.g. a cache entry,
/// would leave a member behind forever).
/// KEYS: record, record index, expiry index.
/// ARGV: store key, value, ttl ms ('' = none), '1' = only if absent, now ms, record prefix,
/// prune batch. `now` is the caller's clock: it only decides which members pruning looks at;
/// what it removes is decided by the record's real PTTL, so clock skew cannot drop a live key.
/// Returns 1 when written, 0 when refused (only if absent).
pub const PUT: &str = r"
local set = {'SET', KEYS[1], ARGV[2]}
if ARGV[3] ~= '' then set[#set + 1] = 'PX'; set[#set + 1] = ARGV[3] end
if ARGV[4] == '1' then set[#set + 1] = 'NX' end
if not redis.call(unpack(set)) then return 0 end
local now = tonumber(ARGV[5])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))
for _, member in ipairs(due) do
  local pttl = redis.call('PTTL', ARGV[6] .. member)
  if pttl == -2 then
    redis.call('ZREM', KEYS[2], member)
    redis.call('ZREM', KEYS[3], member)
  elseif pttl == -1 then
    redis.call('ZREM', KEYS[3], member)
  else
    redis.call('ZADD', KEYS[3], now + pttl, member)
  end
end
return 1
";

/// Deletes a record and its index members together. DEL counts only live keys (Redis expires
/// a key on access), so the result is "a live record was removed" (1) or not (0).
/// KEYS: record, record index, expiry index. ARGV: store key.
pub const DELETE: &str = r"
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return removed
";

/// Lists live records by prefix in key order from the record index, skipping (and removing)
/// members whose record has expired, so one call returns up to `limit` live records.
/// KEYS: record index, expiry index.
/// ARGV: key prefix, limit, record prefix, page size. The range is `[prefix` to
/// `(prefix\xff`: 0xff never occurs in UTF-8, so it bounds every key with the prefix (the
/// script appends it, so every argument stays UTF-8). Returns key, value, key, value, ...
pub const LIST: &str = r"
local min, max = '[' .. ARGV[1], '(' .. ARGV[1] .. '\255'
local limit, page = tonumber(ARGV[2]), tonumber(ARGV[4])
local out, found, offset, gone = {}, 0, 0, {}
while found < limit do
  local members = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', offset, page)
  for _, member in ipairs(members) do
    local value = redis.call('GET', ARGV[3] .. member)
    if value then
      out[#out + 1] = member
      out[#out + 1] = value
      found = found + 1
      if found == limit then break end
    else
      gone[#gone + 1] = member
    end
  end
  if #members < page then break end
  offset = offset + page
end
for _, member in ipairs(gone) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZREM', KEYS[2], member)
end
return out
";

/// Adds to a counter; sets its TTL only if this add created it. Existence is checked before the
/// INCRBY rather than inferred from "total == delta": a counter released back to 0 would look
/// new, and its window would move.
/// KEYS: counter. ARGV: delta, ttl ms ('' = none). Returns the new total.
pub const COUNTER_ADD: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return total
";

/// The capped add: read, compare and add in one script, so no other client runs in between.
/// Returns {1, new total} or {0, current total} (the current total may come back as the
/// counter's string).
/// KEYS: counter. ARGV: delta, ceiling, ttl ms ('' = none).
pub const COUNTER_ADD_CAPPED: &str = r"
local raw = redis.call('GET', KEYS[1])
local current = 0
if raw then
  current = tonumber(raw)
  if not current then return redis.error_reply('CORRUPT counter is not an integer') end
end
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, raw or 0} end
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if not raw and ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, total}
";

/// Appends to a log: the sequence and the entry in one step, so append order is the sequence
/// order. KEYS: log, sequence. ARGV: at_ms (score), at_ms as 20 digits, data. Returns the
/// sequence.
pub const LOG_APPEND: &str = r"
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2] .. string.format('%016d', seq) .. ARGV[3])
return seq
";

/// A batch of counter adds and lease acquires/releases, all or nothing (the rules are
/// `store::batch`'s): first every op is decided in order against a simulation of the state the
/// ops before it leave (reads only), and the script returns at the first refusal; then every op
/// is applied. Nothing else runs in between (a script is atomic), so a refused batch changes
/// nothing.
///
/// Time: lease expiries are scored with the **server's** clock (`TIME`), the same clock that
/// runs counter and record TTLs (`PEXPIRE`, `PX`): which lease is live is decided by the
/// server alone, never by a caller's skewed clock (as in [`PUT`], where the caller's clock
/// only chooses what pruning looks at). Counter TTLs are relative (`PEXPIRE`) as in
/// [`COUNTER_ADD`].
///
/// KEYS: one per op: `c:{key}` for an add, `s:{key}` for an acquire or release.
/// ARGV: four per op: `a`, delta, ceiling ('' = none), ttl ms ('' = none); or `q`, holder,
/// limit, ttl ms (0 = over at once); or `r`, holder, '', ''.
/// Returns {1, total or count per op...} or {0, index of the refusing op (from 0), current}.
pub const BATCH: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowarg = string.format('%.0f', now)
local n = #KEYS
local counters, counters_stored, sets, sets_stored = {}, {}, {}, {}
for i = 1, n do
  local k, base = KEYS[i], (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'a' then
    if counters[k] == nil then
      local raw = redis.call('GET', k)
      local v = 0
      if raw then
        v = tonumber(raw)
        if not v then return redis.error_reply('CORRUPT counter is not an integer') end
      end
      counters[k], counters_stored[k] = v, v
    end
    local d, ceiling = tonumber(ARGV[base + 2]), ARGV[base + 3]
    if ceiling ~= '' and d > 0 and counters[k] + d > tonumber(ceiling) then
      return {0, i - 1, counters_stored[k]}
    end
    counters[k] = counters[k] + d
  else
    if sets[k] == nil then
      local live, count = {}, 0
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', k, '(' .. nowarg, '+inf')) do
        live[m] = true
        count = count + 1
      end
      sets[k], sets_stored[k] = {live = live, count = count}, count
    end
    local set, holder = sets[k], ARGV[base + 2]
    if kind == 'q' then
      local ttl = tonumber(ARGV[base + 4])
      if not set.live[holder] then
        if set.count >= tonumber(ARGV[base + 3]) then return {0, i - 1, sets_stored[k]} end
        if ttl > 0 then
          set.live[holder] = true
          set.count = set.count + 1
        end
      elseif ttl <= 0 then
        set.live[holder] = nil
        set.count = set.count - 1
      end
    elseif set.live[holder] then
      set.live[holder] = nil
      set.count = set.count - 1
    end
  end
end
local out = {1}
for i = 1, n do
  local k, base = KEYS[i], (i - 1) * 4
  local kind = ARGV[base + 1]
  if kind == 'a' then
    local created = redis.call('EXISTS', k) == 0
    out[#out + 1] = redis.call('INCRBY', k, ARGV[base + 2])
    if created and ARGV[base + 4] ~= '' then redis.call('PEXPIRE', k, ARGV[base + 4]) end
  else
    redis.call('ZREMRANGEBYSCORE', k, '-inf', nowarg)
    local holder, ttl = ARGV[base + 2], tonumber(ARGV[base + 4])
    if kind == 'q' and ttl > 0 then
      redis.call('ZADD', k, string.format('%.0f', now + ttl), holder)
    else
      redis.call('ZREM', k, holder)
    end
    local count = redis.call('ZCARD', k)
    if count > 0 then
      local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
      redis.call('PEXPIREAT', k, last[2])
    end
    out[#out + 1] = count
  end
end
return out
";

/// Live leases of a set, by the server's clock (see [`BATCH`]). KEYS: lease set. Returns the
/// count.
pub const LEASE_COUNT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
";

/// Which script a [`ScriptCall`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptId {
    Put,
    Delete,
    List,
    CounterAdd,
    CounterAddCapped,
    LogAppend,
    Batch,
    LeaseCount,
}

impl ScriptId {
    /// Every script, in declaration order (`id as usize` indexes this).
    pub const ALL: [ScriptId; 8] = [
        ScriptId::Put,
        ScriptId::Delete,
        ScriptId::List,
        ScriptId::CounterAdd,
        ScriptId::CounterAddCapped,
        ScriptId::LogAppend,
        ScriptId::Batch,
        ScriptId::LeaseCount,
    ];

    /// The Lua source.
    pub fn source(self) -> &'static str {
        match self {
            ScriptId::Put => PUT,
            ScriptId::Delete => DELETE,
            ScriptId::List => LIST,
            ScriptId::CounterAdd => COUNTER_ADD,
            ScriptId::CounterAddCapped => COUNTER_ADD_CAPPED,
            ScriptId::LogAppend => LOG_APPEND,
            ScriptId::Batch => BATCH,
            ScriptId::LeaseCount => LEASE_COUNT,
        }
    }
}

/// One script invocation: which script, its KEYS and its ARGV, in the order the script reads
/// them. Backends turn this into `EVALSHA`/`EVAL` their own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall<'a> {
    pub script: ScriptId,
    pub keys: Vec<String>,
    /// All UTF-8 text except the value / data argument, which is whatever the backend passed.
    pub args: Vec<Cow<'a, [u8]>>,
}

fn text(s: impl Into<String>) -> Cow<'static, [u8]> {
    Cow::Owned(s.into().into_bytes())
}

/// [`PUT`]: writes `value` (already in the backend's format) under `key`. The script returns
/// 1 when written.
pub fn put_call<'a>(
    key: &str,
    value: &'a [u8],
    ttl_ms: Option<u64>,
    only_if_absent: bool,
    now_ms: u64,
) -> ScriptCall<'a> {
    ScriptCall {
        script: ScriptId::Put,
        keys: vec![record_key(key), RECORD_INDEX.into(), EXPIRY_INDEX.into()],
        args: vec![
            text(key),
            Cow::Borrowed(value),
            text(ttl_arg(ttl_ms)),
            text(if only_if_absent { "1" } else { "0" }),
            text(now_ms.to_string()),
            text(RECORD),
            text(PRUNE_BATCH.to_string()),
        ],
    }
}

/// [`DELETE`]: removes `key`; the script returns 1 when a live record was removed.
pub fn delete_call(key: &str) -> ScriptCall<'static> {
    ScriptCall {
        script: ScriptId::Delete,
        keys: vec![record_key(key), RECORD_INDEX.into(), EXPIRY_INDEX.into()],
        args: vec![text(key)],
    }
}

/// [`LIST`]: up to `limit` live records whose key starts with `prefix` (call only with
/// `limit > 0`). Decode the flat reply with [`pairs`].
pub fn list_call(prefix: &str, limit: usize) -> ScriptCall<'static> {
    ScriptCall {
        script: ScriptId::List,
        keys: vec![RECORD_INDEX.into(), EXPIRY_INDEX.into()],
        args: vec![
            text(prefix),
            text(limit_arg(limit).to_string()),
            text(RECORD),
            text(limit.clamp(16, LIST_PAGE_MAX).to_string()),
        ],
    }
}

/// [`COUNTER_ADD`]: the script returns the new total.
pub fn counter_add_call(key: &str, delta: i64, ttl_ms: Option<u64>) -> ScriptCall<'static> {
    ScriptCall {
        script: ScriptId::CounterAdd,
        keys: vec![counter_key(key)],
        args: vec![text(delta.to_string()), text(ttl_arg(ttl_ms))],
    }
}

/// [`COUNTER_ADD_CAPPED`]: decode the reply's two integers with [`cap_outcome`].
pub fn counter_add_capped_call(
    key: &str,
    delta: i64,
    ceiling: i64,
    ttl_ms: Option<u64>,
) -> ScriptCall<'static> {
    ScriptCall {
        script: ScriptId::CounterAddCapped,
        keys: vec![counter_key(key)],
        args: vec![
            text(delta.to_string()),
            text(ceiling.to_string()),
            text(ttl_arg(ttl_ms)),
        ],
    }
}

/// [`LOG_APPEND`]: appends `data` (already in the backend's format) to `log`.
pub fn log_append_call<'a>(log: &str, at_ms: u64, data: &'a [u8]) -> ScriptCall<'a> {
    ScriptCall {
        script: ScriptId::LogAppend,
        keys: vec![log_key(log), log_sequence_key(log)],
        args: vec![
            text(at_ms.to_string()),
            text(format!("{at_ms:0AT_DIGITS$}")),
            Cow::Borrowed(data),
        ],
    }
}

/// [`BATCH`]: the whole batch in one script (call only with a non-empty batch). Decode the
/// reply with [`batch_outcome`].
pub fn batch_call(ops: &[BatchOp]) -> ScriptCall<'static> {
    let mut keys = Vec::with_capacity(ops.len());
    let mut args = Vec::with_capacity(ops.len() * BATCH_ARGS_PER_OP);
    for op in ops {
        match op {
            BatchOp::Add {
                key,
                delta,
                ceiling,
                ttl_ms,
            } => {
                keys.push(counter_key(key));
                args.extend([
                    text("a"),
                    text(delta.to_string()),
                    text(ceiling.map_or_else(String::new, |c| c.to_string())),
                    text(ttl_arg(*ttl_ms)),
                ]);
            }
            BatchOp::Acquire {
                key,
                holder,
                limit,
                ttl_ms,
            } => {
                keys.push(lease_key(key));
                args.extend([
                    text("q"),
                    text(holder.as_str()),
                    // Lua compares numbers as doubles: a limit past 2^53 is "no limit" anyway.
                    text(limit.min(&(1 << 53)).to_string()),
                    text((*ttl_ms).min(MAX_TTL_MS).to_string()),
                ]);
            }
            BatchOp::Release { key, holder } => {
                keys.push(lease_key(key));
                args.extend([text("r"), text(holder.as_str()), text(""), text("")]);
            }
        }
    }
    ScriptCall {
        script: ScriptId::Batch,
        keys,
        args,
    }
}

/// [`LEASE_COUNT`]: the script returns the count.
pub fn lease_count_call(key: &str) -> ScriptCall<'static> {
    ScriptCall {
        script: ScriptId::LeaseCount,
        keys: vec![lease_key(key)],
        args: Vec::new(),
    }
}

/// The [`BATCH`] reply as an outcome; `None` when it does not have the shape the script
/// returns for `ops` ops.
pub fn batch_outcome(reply: &[i64], ops: usize) -> Option<BatchOutcome> {
    match reply {
        [1, totals @ ..] if totals.len() == ops => Some(BatchOutcome::Applied(totals.to_vec())),
        [0, index, current] => {
            let index = usize::try_from(*index).ok().filter(|i| *i < ops)?;
            Some(BatchOutcome::Refused {
                index,
                current: *current,
            })
        }
        _ => None,
    }
}

/// The arguments of the `ZRANGEBYSCORE` that reads a log: entries with
/// `from_ms <= at_ms < to_ms`, at most `limit`. Same score → members in byte order → the
/// zero-padded sequence → append order. Decode members with [`parse_log_member`]. Skip the
/// call when `limit == 0 || from_ms >= to_ms` (nothing can match).
pub fn log_range_args(log: &str, from_ms: u64, to_ms: u64, limit: usize) -> [String; 6] {
    [
        log_key(log),
        from_ms.to_string(),
        format!("({to_ms}"),
        "LIMIT".into(),
        "0".into(),
        limit_arg(limit).to_string(),
    ]
}

/// The Redis key of a record.
pub fn record_key(key: &str) -> String {
    format!("{RECORD}{key}")
}

/// The Redis key of a counter.
pub fn counter_key(key: &str) -> String {
    format!("{COUNTER}{key}")
}

/// The Redis key of a lease set.
pub fn lease_key(key: &str) -> String {
    format!("{LEASE_SET}{key}")
}

/// The Redis key of a log.
pub fn log_key(log: &str) -> String {
    format!("{LOG}{log}")
}

/// The Redis key of a log's append sequence.
pub fn log_sequence_key(log: &str) -> String {
    format!("{LOG_SEQUENCE}{log}")
}

/// A TTL argument for the scripts: '' for none, else clamped milliseconds.
pub fn ttl_arg(ttl_ms: Option<u64>) -> String {
    ttl_ms.map_or_else(String::new, |t| t.clamp(1, MAX_TTL_MS).to_string())
}

/// A count limit as Redis takes it.
pub fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Splits a log member back into `at_ms` and data; `None` when malformed.
pub fn parse_log_member(member: &[u8]) -> Option<(u64, &[u8])> {
    let head = member.get(..AT_DIGITS + SEQ_DIGITS)?;
    let at_ms = std::str::from_utf8(&head[..AT_DIGITS]).ok()?.parse().ok()?;
    Some((at_ms, &member[AT_DIGITS + SEQ_DIGITS..]))
}

/// The capped add's reply `{added, total}` as an outcome.
pub fn cap_outcome(added: i64, total: i64) -> CapOutcome {
    if added == 1 {
        CapOutcome::Added(total)
    } else {
        CapOutcome::Refused(total)
    }
}

/// The LIST reply (key, value, key, value, ...) as pairs; a trailing odd item is dropped.
pub fn pairs<T>(flat: Vec<T>) -> Vec<(T, T)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut items = flat.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        out.push((key, value));
    }
    out
}

/// Whether a Redis error reply means the stored data has the wrong shape (a corrupt or
/// wrongly typed value) rather than a failing server: such errors map to
/// `StoreError::Corrupt`.
pub fn is_data_error(message: &str) -> bool {
    message.starts_with("WRONGTYPE")
        || message.starts_with("CORRUPT")
        || message.contains("not an integer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_members_round_trip() {
        let call = log_append_call("l", 42, b"\x00data");
        let at = std::str::from_utf8(&call.args[1]).unwrap();
        let member = [at.as_bytes(), b"0000000000000007", b"\x00data"].concat();
        assert_eq!(parse_log_member(&member), Some((42, &b"\x00data"[..])));
        assert_eq!(parse_log_member(b"123"), None);
        assert_eq!(parse_log_member(&[b'x'; 40]), None);
    }

    #[test]
    fn arguments_are_text_except_values() {
        let value = [0xff, 0x00];
        let calls = [
            put_call("k\u{e9}", &value, Some(u64::MAX), true, 1),
            delete_call("k"),
            list_call("p", usize::MAX),
            counter_add_call("c", -3, Some(0)),
            counter_add_capped_call("c", 1, 9, None),
            log_append_call("l", 1, &value),
            batch_call(&[
                BatchOp::Add {
                    key: "k".into(),
                    delta: -1,
                    ceiling: Some(3),
                    ttl_ms: None,
                },
                BatchOp::Acquire {
                    key: "k".into(),
                    holder: "h\u{e9}".into(),
                    limit: u64::MAX,
                    ttl_ms: u64::MAX,
                },
                BatchOp::Release {
                    key: "s".into(),
                    holder: "h".into(),
                },
            ]),
            lease_count_call("s"),
        ];
        for call in &calls {
            for (i, arg) in call.args.iter().enumerate() {
                let is_value = matches!(
                    (call.script, i),
                    (ScriptId::Put, 1) | (ScriptId::LogAppend, 2)
                );
                assert!(is_value || std::str::from_utf8(arg).is_ok(), "{call:?}");
            }
            assert_eq!(ScriptId::ALL[call.script as usize], call.script);
        }
        assert_eq!(&*calls[0].args[2], MAX_TTL_MS.to_string().as_bytes());
        assert_eq!(&*calls[3].args[1], b"1", "a TTL of 0 becomes 1 ms");
        assert_eq!(&*calls[4].args[2], b"", "no TTL");
        assert_eq!(&*calls[2].args[3], b"256");
        let batch = &calls[6];
        assert_eq!(
            batch.keys,
            ["c:k", "s:k", "s:s"],
            "counters and lease sets apart"
        );
        assert_eq!(batch.args.len(), 3 * BATCH_ARGS_PER_OP);
        assert_eq!(&*batch.args[2], b"3");
        assert_eq!(&*batch.args[3], b"", "no TTL");
        assert_eq!(&*batch.args[6], (1u64 << 53).to_string().as_bytes());
        assert_eq!(&*batch.args[7], MAX_TTL_MS.to_string().as_bytes());
    }

    #[test]
    fn batch_replies_decode() {
        assert_eq!(
            batch_outcome(&[1, 4, 2], 2),
            Some(BatchOutcome::Applied(vec![4, 2]))
        );
        assert_eq!(
            batch_outcome(&[0, 1, 9], 2),
            Some(BatchOutcome::Refused {
                index: 1,
                current: 9
            })
        );
        assert_eq!(batch_outcome(&[1, 4], 2), None, "a total missing");
        assert_eq!(batch_outcome(&[0, 2, 9], 2), None, "index out of range");
        assert_eq!(batch_outcome(&[0, -1, 9], 2), None);
        assert_eq!(batch_outcome(&[], 0), None);
    }

    #[test]
    fn replies_decode() {
        assert_eq!(cap_outcome(1, 5), CapOutcome::Added(5));
        assert_eq!(cap_outcome(0, 9), CapOutcome::Refused(9));
        assert_eq!(pairs(vec![1, 2, 3, 4, 5]), [(1, 2), (3, 4)]);
        assert!(is_data_error("WRONGTYPE Operation against a key"));
        assert!(is_data_error("CORRUPT counter is not an integer"));
        assert!(is_data_error(
            "ERR value is not an integer or out of range script: ..."
        ));
        assert!(!is_data_error("NOSCRIPT No matching script"));
    }
}
