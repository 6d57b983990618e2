"""The provider key's request budget, shared by every muxweb process on every machine.

Providers limit requests per minute per key, and every request counts: a create, each poll,
each download. So every call of `VideosClient` first claims a slot here, and the key's limit is
never exceeded however many web and worker processes share it.

- The limit is `MUXWEB_PROVIDER_RPM`, or else the one the provider states in its
  `x-ratelimit-limit-requests` header; until one is known only the provider's 429s hold requests
  back (through the pause below). A 429 does not set the limit: it may be about jobs rendering at
  once, or another client of the key, not this minute's count.
- A sliding window, not a fixed one: a slot is granted while fewer than the limit were granted in
  the last `WINDOW` seconds. A fixed window lets through twice the limit across its edge (the
  limit at 0:59 and again at 1:00), which a provider counting in a sliding minute refuses. The
  window is a second longer than the provider's minute, so network delays and clocks a little
  apart never land two minutes' worth of requests in one of the provider's.
- Priorities: creates, downloads of files about to expire and status checks may use every slot;
  downloads with time to spare leave one request in fifty free for them (one at 25 a minute),
  listings and imports three tenths (`RESERVED_SHARE`). Between the first three the order is
  kept before the budget is asked: jobs wait in muxweb for a create slot and are admitted in
  fair order, less one slot kept for the status check that shows finished jobs
  (videos/fairshare.py), and downloads with time to spare wait while jobs do (videos/queue.py).
  A call finding no room waits until a slot frees, up to its own limit (`MAX_WAIT`); a poll
  waits only a moment and is otherwise put off to a later sweep (see `BudgetDeferred` in
  client.py).
- A 429, or `x-ratelimit-remaining-requests: 0`, pauses the whole key (every process) until
  `Retry-After` or the reset time the provider gave, not only the job that got it.

The state lives in the database (one `ProviderBudget` row per key, claimed under
`select_for_update`, which on SQLite is the IMMEDIATE transaction's write lock), or in Redis when
`REDIS_URL` is set (a sorted set of grant times and a hash, changed by one Lua script at a time,
timed by Redis's own clock). A key is known by a hash of the API base and the key: the key itself
is never stored or logged.

`MUXWEB_PROVIDER_BUDGET=off` turns the budget into a no-op (every call goes at once, no pause is
shared, nothing is learnt): each job then backs off on its own after a 429, the behaviour before
the budget, kept only as the baseline benchmarks/budget.py measures against.
"""

import hashlib
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import IntEnum

from django.conf import settings
from django.db import transaction

WINDOW = 61.0
# How long the key pauses after a 429 that says nothing of when to come back.
DEFAULT_PAUSE = 5.0
# The longest pause a provider's header is taken for.
MAX_PAUSE = 3600.0
# With the budget tight, status checks fall on a grid of this many seconds (on_check_grid).
CHECK_GRID = 10.0
# Below this limit, or with less than this share of it free, the budget is tight (is_tight).
TIGHT_LIMIT = 30
TIGHT_FREE_SHARE = 0.5


class Priority(IntEnum):
    CREATE = 0  # creates and remixes: what the team is waiting for, and paid for
    URGENT = 1  # downloads of files the provider deletes soon; finding a create's outcome
    POLL = 2  # status checks (polls and lists): what shows a job finished
    DOWNLOAD = 3  # downloads with time to spare
    LISTING = 4  # imports, listings and deletes: nobody is waiting on them


RESERVED_SHARE = {
    Priority.CREATE: 0.0,
    Priority.URGENT: 0.0,
    Priority.POLL: 0.0,
    Priority.DOWNLOAD: 0.02,
    Priority.LISTING: 0.3,
}
# How long a call of each priority waits for a slot before it is put off.
MAX_WAIT = {
    Priority.CREATE: 30.0,
    Priority.URGENT: 60.0,
    Priority.POLL: 1.0,
    Priority.DOWNLOAD: 1.0,
    Priority.LISTING: 60.0,
}


@dataclass(frozen=True)
class BudgetState:
    """What admins see: requests sent in the last minute, the limit, and the pause left; and
    when the oldest request of the window leaves it (fair share wakes then to admit a job)."""

    used: int
    limit: int | None
    learnt: bool
    paused_for: float
    frees_in: float = 0.0

    @property
    def is_tight(self) -> bool:
        """Short of requests: paused, a low limit (OpenAI's tier 1 allows `sora-2` 25 a minute),
        or less than half the limit free in the window. With no limit known (none set, none
        stated) only a pause makes it tight: the provider has not said requests are scarce."""
        if self.paused_for > 0:
            return True
        if not self.limit:
            return False
        return self.limit < TIGHT_LIMIT or self.limit - self.used < self.limit * TIGHT_FREE_SHARE

    @property
    def room(self) -> int | None:
        """Requests that may go now, or None when no limit is known."""
        if not self.limit:
            return None
        return 0 if self.paused_for > 0 else max(self.limit - self.used, 0)


def key_id(api_base: str, api_key: str) -> str:
    """The name a key's budget is kept under: never the key itself."""
    return hashlib.sha256(f"{api_base.rstrip('/')}\n{api_key}".encode()).hexdigest()[:40]


def room_for(limit: int, priority: Priority) -> int:
    """How many of the window's slots a call of this priority may see used before it waits."""
    return max(limit - math.ceil(limit * RESERVED_SHARE[priority]), 1)


class DatabaseStore:
    """The budget in a `ProviderBudget` row; times are this machine's clock (see WINDOW)."""

    def _row(self, key: str, *, lock: bool):
        from videos.models import ProviderBudget

        ProviderBudget.objects.get_or_create(key=key)
        rows = ProviderBudget.objects.select_for_update() if lock else ProviderBudget.objects
        return rows.get(key=key)

    def claim(self, key: str, configured: int, priority: Priority, count: int) -> tuple[int, float]:
        """Take up to `count` slots: how many were taken, and (when fewer) how long until one
        more may free, in seconds."""
        with transaction.atomic():
            row = self._row(key, lock=True)
            now = time.time()
            if row.paused_until > now:
                return 0, row.paused_until - now
            sent = sorted(t for t in row.sent if t > now - WINDOW)
            limit = configured or row.learnt_limit
            room = room_for(limit, priority) if limit else len(sent) + count
            granted = max(min(count, room - len(sent)), 0)
            if granted:
                sent = [*sent, *[now] * granted]
                row.sent = sent
                row.save(update_fields=["sent", "updated_at"])
            if granted == count:
                return granted, 0.0
            # One more fits once the slot `room` places back leaves the window.
            return granted, max(sent[len(sent) - room] + WINDOW - now, 0.01)

    def pause(self, key: str, seconds: float) -> None:
        with transaction.atomic():
            row = self._row(key, lock=True)
            until = time.time() + seconds
            if until > row.paused_until:
                row.paused_until = until
                row.save(update_fields=["paused_until", "updated_at"])

    def learn(self, key: str, limit: int) -> None:
        """Keep the limit the provider states."""
        with transaction.atomic():
            row = self._row(key, lock=True)
            if row.learnt_limit != limit:
                row.learnt_limit = limit
                row.save(update_fields=["learnt_limit", "updated_at"])

    def state(self, key: str) -> tuple[int, int | None, float, float]:
        from videos.models import ProviderBudget

        row = ProviderBudget.objects.filter(key=key).first()
        if row is None:
            return 0, None, 0.0, 0.0
        now = time.time()
        sent = [t for t in row.sent if t > now - WINDOW]
        frees_in = min(sent) + WINDOW - now if sent else 0.0
        return len(sent), row.learnt_limit, max(row.paused_until - now, 0.0), frees_in

    def forget(self, key: str) -> None:
        from videos.models import ProviderBudget

        ProviderBudget.objects.filter(key=key).delete()


# Redis: KEYS[1] the sorted set of grant times, KEYS[2] the hash (limit, paused_until).
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
_CLAIM = (
    _NOW
    + """
local window, configured, share = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count = tonumber(ARGV[5])
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
if paused > now then return {0, tostring(paused - now)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local limit = configured
if limit == 0 then limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or '0') end
local granted, wait, room = count, 0, 0
if limit > 0 then
  room = math.max(limit - math.ceil(limit * share), 1)
  granted = math.max(math.min(count, room - used), 0)
end
for i = 1, granted do
  redis.call('ZADD', KEYS[1], now, tostring(now) .. ':' .. ARGV[4] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
if granted < count then
  -- One more fits once the slot `room` places back leaves the window.
  local index = used + granted - room
  local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
  wait = math.max(tonumber(oldest[2]) + window - now, 0.01)
end
return {granted, tostring(wait)}
"""
)
_PAUSE = (
    _NOW
    + """
local resume = now + tonumber(ARGV[1])
if resume > tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0') then
  redis.call('HSET', KEYS[1], 'paused_until', tostring(resume))
end
"""
)
_STATE = (
    _NOW
    + """
local window = tonumber(ARGV[1])
local used = redis.call('ZCOUNT', KEYS[1], now - window, '+inf')
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
local oldest = redis.call(
  'ZRANGEBYSCORE', KEYS[1], now - window, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local frees_in = 0
if oldest[2] then frees_in = tonumber(oldest[2]) + window - now end
return {used, redis.call('HGET', KEYS[2], 'limit') or '', tostring(math.max(paused - now, 0)),
        tostring(frees_in)}
"""
)


class RedisStore:
    """The budget in Redis, timed by the Redis server's clock: one clock for every machine."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self._claim = self.redis.register_script(_CLAIM)
        self._pause = self.redis.register_script(_PAUSE)
        self._state = self.redis.register_script(_STATE)

    @staticmethod
    def _keys(key: str) -> list[str]:
        return [f"muxweb:budget:{key}:sent", f"muxweb:budget:{key}"]

    def claim(self, key: str, configured: int, priority: Priority, count: int) -> tuple[int, float]:
        args = [WINDOW, configured, RESERVED_SHARE[priority], secrets.token_hex(6), count]
        granted, wait = self._claim(keys=self._keys(key), args=args)
        return int(granted), float(wait)

    def pause(self, key: str, seconds: float) -> None:
        self._pause(keys=self._keys(key)[1:], args=[seconds])

    def learn(self, key: str, limit: int) -> None:
        self.redis.hset(self._keys(key)[1], "limit", limit)

    def state(self, key: str) -> tuple[int, int | None, float, float]:
        used, limit, paused, frees_in = self._state(keys=self._keys(key), args=[WINDOW])
        return int(used), int(limit) if limit else None, float(paused), float(frees_in)

    def forget(self, key: str) -> None:
        self.redis.delete(*self._keys(key))


_stores: dict[str, DatabaseStore | RedisStore] = {}
_stores_lock = threading.Lock()


def store() -> DatabaseStore | RedisStore:
    """Redis when REDIS_URL is set, else the database; one per process."""
    url = getattr(settings, "REDIS_URL", "")
    with _stores_lock:
        if url not in _stores:
            _stores[url] = RedisStore(url) if url else DatabaseStore()
        return _stores[url]


class Budget:
    """One key's budget: claim a slot before each request, report what the provider answered."""

    def __init__(self, api_base: str, api_key: str) -> None:
        self.key = key_id(api_base, api_key)

    def __repr__(self) -> str:
        return f"<Budget {self.key[:8]}>"

    @property
    def enabled(self) -> bool:
        return bool(getattr(settings, "MUXWEB_PROVIDER_BUDGET", True))

    @property
    def configured(self) -> int:
        return int(getattr(settings, "MUXWEB_PROVIDER_RPM", 0) or 0)

    def acquire(self, priority: Priority, max_wait: float | None = None) -> float:
        """Wait for a slot, up to `max_wait` seconds (the priority's own by default): 0.0 once
        granted, or how much longer it would have taken when that is past `max_wait`."""
        if not self.enabled:
            return 0.0
        max_wait = MAX_WAIT[priority] if max_wait is None else max_wait
        deadline = time.monotonic() + max_wait
        while True:
            granted, wait = store().claim(self.key, self.configured, priority, 1)
            if granted:
                return 0.0
            left = deadline - time.monotonic()
            if wait > left:
                return wait
            # The time a slot frees (or the pause ends) is known: sleep until then, not in a loop.
            time.sleep(wait)

    def take(self, priority: Priority, count: int) -> tuple[int, float]:
        """Up to `count` slots at once, without waiting: how many were granted, and when more
        may be (for a sweep's polls: the first ones go now, the others later)."""
        if not self.enabled:
            return count, 0.0
        return store().claim(self.key, self.configured, priority, count)

    def observe(self, status: int, headers) -> None:
        """Learn from an answer: the limit it states, and a pause after a 429 or when the
        provider says no request is left."""
        if not self.enabled:
            return
        limit = _count(headers.get("x-ratelimit-limit-requests"))
        if limit:
            store().learn(self.key, limit)
        remaining = _count(headers.get("x-ratelimit-remaining-requests"))
        reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
        if status == 429:
            wait = _retry_after(headers)
            if wait is None:
                wait = reset if reset is not None else DEFAULT_PAUSE
            store().pause(self.key, min(wait, MAX_PAUSE))
        elif remaining == 0 and reset:
            store().pause(self.key, min(reset, MAX_PAUSE))

    def state(self) -> BudgetState:
        used, learnt, paused_for, frees_in = store().state(self.key)
        limit = self.configured or learnt
        return BudgetState(
            used=used,
            limit=limit,
            learnt=not self.configured,
            paused_for=paused_for,
            frees_in=frees_in,
        )

    def limits_creates(self) -> bool:
        """Whether creates must wait for room here: the budget is on and a limit is known."""
        return self.enabled and bool(self.state().limit)

    def forget(self) -> None:
        """Start afresh: nothing sent, nothing learnt, no pause (tests; a new key)."""
        store().forget(self.key)


def on_check_grid(now, seconds: float) -> float:
    """`seconds` after `now` (a datetime), moved later to the next multiple of CHECK_GRID since
    the epoch: jobs due within the same few seconds are then due at once, and one list of the
    provider's jobs answers for all of them."""
    start = now.timestamp()
    return math.ceil((start + seconds) / CHECK_GRID) * CHECK_GRID - start


def default_budget() -> Budget:
    return Budget(settings.MUXWEB_API_BASE, settings.MUXWEB_API_KEY)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """Seconds from OpenAI's way of writing a wait ("1s", "6m0s", "250ms", "1.5s") or a plain
    number of seconds; None for anything else."""
    if not value or len(value) > 40:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    return min(seconds, MAX_PAUSE) if math.isfinite(seconds) and seconds >= 0 else None


def _retry_after(headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("Retry-After", 1.0)):
        raw = headers.get(name)
        try:
            seconds = float(raw) * scale if raw and len(raw) < 40 else None
        except ValueError:
            seconds = None
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _count(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or len(value) > 12:
        return None
    return int(value.strip())
