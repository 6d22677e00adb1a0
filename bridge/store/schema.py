"""The one schema of the state database, as numbered migrations, for both engines.

Append a plain SQL string in the portable subset :mod:`bridge.store.dialect` describes (SQLite's
dialect, which the Postgres engine rewrites); never edit a migration that has shipped: SQLite
state dirs upgrade by position (``PRAGMA user_version``), Postgres by its ``schema_version`` table.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: agents and their launches
    """
    CREATE TABLE agents (
        slug TEXT PRIMARY KEY,
        runtime TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        runtime_session_id TEXT,
        state TEXT NOT NULL DEFAULT 'starting',
        restarts INTEGER NOT NULL DEFAULT 0,
        spec_hash TEXT,
        crash_loop_since REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE launches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        pid INTEGER,
        session_id TEXT,
        resumed INTEGER NOT NULL DEFAULT 0,
        argv TEXT,
        started_at REAL NOT NULL,
        exited_at REAL,
        exit_reason TEXT
    );
    CREATE INDEX launches_slug ON launches(slug, started_at);
    """,
    # 2: transcript offsets, the delivery ledger, parse counters
    """
    CREATE TABLE transcripts (
        slug TEXT NOT NULL,
        path TEXT NOT NULL,
        session_id TEXT,
        offset INTEGER NOT NULL DEFAULT 0,
        inode INTEGER,
        generation INTEGER NOT NULL DEFAULT 0,
        finished INTEGER NOT NULL DEFAULT 0,
        bad_lines INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (slug, path)
    );
    CREATE TABLE ledger (
        slug TEXT NOT NULL,
        event_id TEXT NOT NULL,
        status TEXT NOT NULL,
        chat_ref TEXT,
        payload TEXT,
        created_at REAL NOT NULL,
        posted_at REAL,
        PRIMARY KEY (slug, event_id)
    );
    CREATE INDEX ledger_pending ON ledger(status) WHERE status = 'pending';
    """,
    # 3: hook tokens, the durable prompt queue, activity
    """
    CREATE TABLE hook_tokens (
        slug TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        issued_at REAL NOT NULL
    );
    CREATE TABLE prompt_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        source TEXT,
        dedupe_key TEXT,
        status TEXT NOT NULL DEFAULT 'queued',
        outcome TEXT,
        created_at REAL NOT NULL,
        delivered_at REAL,
        confirmed_at REAL
    );
    CREATE INDEX prompt_queue_open ON prompt_queue(slug, status);
    CREATE UNIQUE INDEX prompt_queue_dedupe ON prompt_queue(slug, dedupe_key)
        WHERE dedupe_key IS NOT NULL;
    ALTER TABLE agents ADD COLUMN activity TEXT NOT NULL DEFAULT 'starting';
    ALTER TABLE agents ADD COLUMN activity_since REAL;
    ALTER TABLE agents ADD COLUMN context_tokens INTEGER;
    ALTER TABLE agents ADD COLUMN context_window INTEGER;
    """,
    # 4: small per-agent facts (compaction guard arming, ...)
    """
    CREATE TABLE agent_meta (
        slug TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (slug, key)
    );
    """,
    # 5: where each turn's prompt was routed (thread, header, echo), so a re-read line is routed
    # from durable state, not from the memory of a runner that may have died
    """
    CREATE TABLE turn_routes (
        slug TEXT NOT NULL,
        event_id TEXT NOT NULL,
        path TEXT NOT NULL,
        generation INTEGER NOT NULL,
        line_offset INTEGER NOT NULL,
        thread TEXT,
        skip INTEGER NOT NULL DEFAULT 0,
        header TEXT,
        item_id INTEGER,
        created_at REAL NOT NULL,
        PRIMARY KEY (slug, event_id)
    );
    CREATE INDEX turn_routes_at ON turn_routes(slug, path, generation, line_offset);
    CREATE INDEX turn_routes_item ON turn_routes(slug, item_id) WHERE item_id IS NOT NULL;
    """,
    # 6: several hosts sharing one store (docs/scaling.md): heartbeats, placements, routed events
    """
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        last_seen REAL NOT NULL,
        started_at REAL NOT NULL,
        version TEXT,
        down_noticed_at REAL
    );
    CREATE TABLE placements (
        slug TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        epoch INTEGER NOT NULL DEFAULT 1,
        updated_at REAL NOT NULL
    );
    CREATE TABLE inbound_events (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT,
        target_host TEXT,
        payload TEXT NOT NULL,
        received_by TEXT NOT NULL,
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        done_at REAL,
        outcome TEXT
    );
    CREATE INDEX inbound_open ON inbound_events(target_host, received_at)
        WHERE done_at IS NULL;
    """,
    # 7: PR reviews, one row per (repo, pull request, head commit) (bridge/review/ledger.py)
    """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        template TEXT,
        ref TEXT NOT NULL,
        repo TEXT,
        number INTEGER,
        head TEXT,
        title TEXT,
        url TEXT,
        slug TEXT,
        status TEXT NOT NULL,
        via TEXT NOT NULL,
        user TEXT,
        channel TEXT,
        header TEXT,
        worktree TEXT,
        note TEXT,
        created_at REAL NOT NULL,
        finished_at REAL,
        clean_after REAL
    );
    CREATE UNIQUE INDEX reviews_once ON reviews(repo, number, head)
        WHERE head IS NOT NULL AND status NOT IN ('requested', 'refused');
    """,
    # 8: agents' questions and approvals waiting on a person, and who answered what
    """
    CREATE TABLE asks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        slug TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        request TEXT NOT NULL,
        answer TEXT,
        answered_by TEXT,
        answered_at REAL,
        delivered_at REAL,
        channel TEXT,
        message_ref TEXT,
        thread TEXT,
        link TEXT,
        partial TEXT,
        reminded_at REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX asks_key ON asks(slug, key);
    CREATE INDEX asks_open ON asks(status) WHERE status IN ('open', 'answered');
    CREATE TABLE answer_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ask_id INTEGER NOT NULL,
        slug TEXT NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX answer_audit_slug ON answer_audit(slug, at);
    """,
    # 9: who owns a thread, for routing replies in a shared channel (bridge/store/recipient.py)
    """
    CREATE INDEX ledger_chat_ref ON ledger(chat_ref) WHERE chat_ref IS NOT NULL;
    CREATE INDEX turn_routes_thread ON turn_routes(thread) WHERE thread IS NOT NULL;
    """,
    # 10: retention (bridge/store/retention.py) finds old rows by time, not by a full scan
    """
    CREATE INDEX ledger_posted_at ON ledger(posted_at) WHERE posted_at IS NOT NULL;
    CREATE INDEX turn_routes_created ON turn_routes(created_at);
    CREATE INDEX prompt_queue_created ON prompt_queue(created_at);
    CREATE INDEX inbound_done ON inbound_events(done_at) WHERE done_at IS NOT NULL;
    CREATE INDEX answer_audit_at ON answer_audit(at);
    CREATE INDEX asks_created ON asks(created_at);
    CREATE INDEX launches_started ON launches(started_at);
    """,
    # 11: moves between hosts (bridge/store/moves.py): a requested move, and whether the row
    # (not the config's host:) is the agent's placement now
    """
    ALTER TABLE placements ADD COLUMN moving_to TEXT;
    ALTER TABLE placements ADD COLUMN move_requested_at REAL;
    ALTER TABLE placements ADD COLUMN moved INTEGER NOT NULL DEFAULT 0;
    """,
)
