"""Typed settings: defaults → optional YAML file → ``CALLCORE_*`` environment.

The default run needs no file and no external service: SQLite under
``data_dir``, dialplans from ``./dialplans``, everything bound to loopback.
Secrets are :class:`pydantic.SecretStr` so they never appear in logs or reprs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

Part = Literal["agi", "ami", "http"]
ALL_PARTS: tuple[Part, ...] = ("agi", "ami", "http")


class WebhookSettings(BaseModel):
    url: str
    secret: SecretStr = SecretStr("")
    events: list[str] = Field(default_factory=lambda: ["call.ringing", "call.answered", "call.ended"])
    max_attempts: int = 5


# --- reports (issue 16): per-queue report settings
class ReportQueueSettings(BaseModel):
    service_level_seconds: float = 20.0
    #: answered | offered | abandoned_in_t_positive | abandoned_after_t (docs/metrics.md)
    service_level_formula: str = "offered"
    short_abandon_seconds: float = 5.0
    exclude_short_abandons: bool = True
    target_service_level_pct: float = 80.0

    @field_validator("service_level_formula")
    @classmethod
    def _known_formula(cls, v: str) -> str:
        from reports.formulas import SL_FORMULAS

        if v not in SL_FORMULAS:
            raise ValueError(f"service_level_formula must be one of {', '.join(SL_FORMULAS)}")
        return v
# --- several Asterisk servers (issue 19; docs/multi-asterisk.md)
AMI_SERVER_NAME = r"^[A-Za-z0-9_-]{1,40}$"


class AmiServerSettings(BaseModel):
    """One Asterisk server's AMI endpoint. Its ``name`` tags every call, channel, agent
    membership and queue callcore learns from it (``Call.server``, ``/api/calls``)."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=AMI_SERVER_NAME)
    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "callcore"
    secret: SecretStr = SecretStr("change-me-callcore-secret")
    #: the app_queue queues this server has (login = QueueAdd here for these); None: every queue
    queues: list[str] | None = None


class RecordingS3Settings(BaseModel):
    """An S3-compatible bucket for recordings (AWS S3, MinIO, SeaweedFS)."""

    endpoint: str  # host:port, e.g. 127.0.0.1:8333
    bucket: str = "callcore-recordings"
    access_key: str
    secret_key: SecretStr
    secure: bool = True
    region: str | None = None
    prefix: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCORE_", extra="ignore", env_nested_delimiter="__")

    # --- files
    config_file: Path | None = None
    data_dir: Path = Path("./data")
    dialplans_dir: Path = Path("./dialplans")
    sounds_dir: Path | None = None  # default: <dialplans_dir>/sounds
    recordings_dir: Path | None = None  # default: <data_dir>/recordings
    #: the sounds directory as Asterisk sees it (STREAM FILE paths); default: sounds_dir's absolute path
    asterisk_sounds_prefix: str | None = None

    # --- database; default: sqlite+aiosqlite:///<data_dir>/callcore.db
    database_url: SecretStr | None = None

    # --- HTTP / websocket API
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    jwt_key: SecretStr = SecretStr("change-me-in-production")  # refused outside dev mode (auth/checker.py)
    api_tokens: dict[str, str] = Field(default_factory=dict)  # token -> "agent:<id>" | "<role>" (prefer API keys)
    auth_required: bool = False

    # --- security (issue 11; docs/security.md)
    #: loopback-only development: a generated signing key, `change-me` secrets only warn
    dev_mode: bool = False
    jwt_key_id: str = Field("k1", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    #: older signing keys that still verify (key id -> key), for rotation
    jwt_previous_keys: dict[str, SecretStr] = Field(default_factory=dict)
    access_token_ttl: int = Field(15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl: int = Field(12 * 3600, ge=60, le=30 * 24 * 3600)
    session_ttl: int = Field(12 * 3600, ge=60, le=7 * 24 * 3600)
    #: the session cookie's Secure flag: set true behind a TLS reverse proxy
    cookie_secure: bool = False
    login_max_failures_account: int = Field(5, ge=1)
    login_max_failures_address: int = Field(20, ge=1)
    login_failure_window: float = Field(300.0, gt=0)
    login_lockout_seconds: float = Field(900.0, gt=0)
    #: request bodies larger than this get 413
    http_max_body_bytes: int = Field(1_048_576, ge=1024)
    #: allowed browser origins for CORS; empty: CORS off
    cors_origins: list[str] = Field(default_factory=list)
    #: customer attribute names encrypted at rest (AES-GCM) and masked for roles without customers.sensitive
    sensitive_customer_fields: list[str] = Field(default_factory=lambda: ["rrn", "card_token"])
    #: field encryption keys (key id -> base64 of 32 random bytes); the first is used to encrypt
    field_keys: dict[str, SecretStr] = Field(default_factory=dict)
    #: agents see customers only through their calls (False: every agent may search all customers)
    agents_see_own_customers_only: bool = True
    #: roles that see caller numbers masked (``010-****-5678``)
    mask_numbers_for_roles: list[str] = Field(default_factory=list)
    #: FastAGI peers allowed to connect (addresses or networks)
    agi_allowed_peers: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"])
    agi_max_sessions: int = Field(1000, ge=1)
    agi_max_sessions_per_peer: int = Field(500, ge=1)
    #: a peer's connections still sending their header; beyond this the oldest is dropped
    agi_max_pending_per_peer: int = Field(32, ge=1)
    #: a session whose peer has not answered its first command within this is dropped
    agi_first_answer_timeout: float = Field(10.0, gt=0)

    # --- FastAGI
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_header_timeout: float = 5.0
    agi_command_timeout: float = 120.0
    agi_shutdown_grace: float = 3.0

    # --- Asterisk configuration the dialplan checker compares flows with (issue 9 item 6):
    # voicemail nodes must name a mailbox this voicemail.conf defines; None: not checked
    voicemail_conf: Path | None = Path("./asterisk-config/voicemail.conf")

    # --- AMI
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "callcore"
    ami_secret: SecretStr = SecretStr("change-me-callcore-secret")  # = asterisk-config/manager.conf
    ami_action_timeout: float = 5.0
    ami_reconnect_min: float = 0.5
    ami_reconnect_max: float = 30.0
    #: several Asterisk servers (issue 19): YAML ``ami_servers:`` or ``CALLCORE_AMI_SERVERS`` (a JSON list
    #: of objects: name, host, port, username, secret[, queues]); empty: one server from ami_host/… and ami_name
    ami_servers: list[AmiServerSettings] = Field(default_factory=list)
    #: agent id -> the server whose dialplan reaches the agent's phone (click-to-call, callbacks);
    #: an agent not listed: the first server
    agent_servers: dict[str, str] = Field(default_factory=dict)
    #: a server not connected for this long (seconds; from start-up, or since it went away) is lost:
    #: its live calls (journal-restored or not) are ended once as "server lost" (cti/server_watch.py);
    #: 0: never (they wait for that server's resync)
    ami_server_lost_grace: float = Field(300.0, ge=0, le=86400)
    #: at start-up the desks get one agent.resync after every server's first resync, or this many
    #: seconds after the first one when a server is slow or down (0: one per server's resync)
    ami_startup_resync_window: float = Field(2.0, ge=0, le=60)

    # --- scale-out (issue 19; ARCHITECTURE.md "Scale-out"): None = one process, in-process bus only
    broker_url: str | None = None  # e.g. nats://127.0.0.1:4222: bus messages cross instances (callcore/broker.py)
    broker_prefix: str = "callcore"  # NATS subject prefix (one per cluster on a shared broker)
    instance_name: str | None = None  # this instance in the cluster; None: <hostname>-<pid>
    ami_name: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,40}$")  # the AMI endpoint's name (its lease: ami:<name>)
    # with a broker, one instance at a time consumes the AMI (callcore/lease.py): a standby takes over
    # at most ttl + interval after the holder's last heartbeat
    ami_lease_ttl: float = Field(3.0, gt=0, le=60)
    ami_lease_interval: float = Field(0.5, gt=0, le=30)
    cluster_forward_timeout: float = Field(15.0, gt=0, le=120)  # call control forwarded to the AMI holder

    # --- which parts run in this process
    only: Annotated[list[Part], NoDecode] = Field(default_factory=lambda: list(ALL_PARTS))

    # --- logging
    log_level: str = "INFO"
    log_json: bool = False

    # --- contact-center behaviour
    crm_url: str | None = None  # external CRM lookup base URL; None: built-in customer table
    repeat_caller_hours: int = 24
    pause_reasons: list[str] = Field(default_factory=lambda: ["break", "lunch", "training", "meeting", "admin"])
    default_wrapup_seconds: int = 10
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    dialplan_watch: bool = True
    # cti: screen-pop preload (issue 9 item 12)
    pop_preload_wait: float = Field(0.5, ge=0, le=5)  # the IVR waits at most this long at the hand-off for the preload
    crm_miss_cache_seconds: float = Field(5.0, ge=0)  # how long "no such customer" is cached (hits: 120 s)
    # --- reliability (issue 12; README "Reliability")
    ami_max_frame_bytes: int = Field(1024 * 1024, ge=1024)  # a longer AMI frame is dropped + counted, the stream resyncs
    ami_max_headers: int = Field(4096, ge=16)  # a frame with more lines is dropped + counted
    ws_send_timeout: float = Field(5.0, gt=0)  # a websocket client that does not take a message within this is cut off
    ws_max_queued: int = Field(500, ge=1)  # ... or that has this many messages waiting for it
    # issue 18 round five: permessage-deflate on the desk websockets. Off: the messages are small JSON,
    # each socket's zlib streams cost ~40 KiB of memory (browsers offer the extension) and every
    # message would be compressed once per socket instead of encoded once for all
    ws_per_message_deflate: bool = False
    # issue 18: asyncio debug mode, logging every callback that holds the loop over 20 ms (callcore/loopwatch.py)
    loop_debug: bool = False
    #: issue 18: log every hold of the event loop over this many ms with its stack, the loop
    #: thread's CPU and the collector's share (a watchdog thread, callcore/loopwatch.py); 0 = off
    loop_stall_stacks_ms: float = Field(0.0, ge=0)
    # issue 18: every this many seconds, objects that survived so far leave the collector's reach
    # (gc.freeze: short gen-2 pauses with thousands of desks connected; callcore/gctune.py); 0 = off
    gc_freeze_interval: float = Field(10.0, ge=0)
    #: seconds between two thaws of the frozen heap, so cycles that became garbage are reclaimed (0: never)
    gc_thaw_interval: float = Field(3600.0, ge=0)
    #: ... a due thaw is skipped unless the heap grew by this many allocator blocks since the last
    #: thaw (frozen garbage shows as growth; callcore/gctune.py); 0: thaw every interval
    gc_thaw_growth_blocks: int = Field(200_000, ge=0)
    #: ... but thaw at least this often (seconds; 0: no such bound)
    gc_thaw_max_interval: float = Field(86_400.0, ge=0)
    #: freeze what survived each full collection at its end (callcore/gctune.py)
    gc_freeze_after_full: bool = False
    #: young-generation GC threshold while the server runs; 0 keeps the interpreter's (700; callcore/gctune.py)
    gc_young_threshold: int = Field(0, ge=0)
    #: freeze at once (checked every second) when the heap grew by this many allocator blocks since
    #: the last freeze, e.g. a burst of desks logging in (callcore/gctune.py); 0: the timer only
    gc_freeze_burst_blocks: int = Field(200_000, ge=0)
    ready_max_backlog: int = Field(1000, ge=1)  # /readyz is 503 while more facts than this wait to be written
    webhook_retry_first_wait: float = Field(1.0, gt=0)  # outbox backoff: first retry after this, doubling ...
    webhook_retry_max_wait: float = Field(300.0, gt=0)  # ... up to this (then dead after the hook's max_attempts)
    journal_max_entries: int = Field(100_000, ge=1)  # ended calls kept in <data_dir>/journal.sqlite3 while the DB is down
    journal_live_interval: float = Field(0.05, gt=0, le=5)  # calls in progress: newest picture written this often

    # --- reports (issue 16): KPIs, rollups, FCR
    report_timezone: str = "UTC"  # the center's time zone: days and 15-minute intervals, e.g. Asia/Seoul
    report_queues: dict[str, ReportQueueSettings] = Field(default_factory=dict)
    report_fcr_window_hours: float = 72.0
    report_resolved_dispositions: list[str] = Field(default_factory=lambda: ["resolved"])

    @field_validator("report_timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"report_timezone: unknown time zone {v!r} (e.g. Asia/Seoul, UTC)") from None
        return v
    # --- recording (issue 13; docs/recording.md)
    recording_enabled: bool = True
    recording_policies_file: Path | None = None  # default: the shipped recording/recording-policies.yaml
    recording_timezone: str = "UTC"  # time-of-day / weekday rules are read in this zone
    recording_store_dir: Path | None = None  # filesystem backend root; default: <data_dir>/recordings-store
    recording_storage: Literal["fs", "s3"] = "fs"
    recording_s3: RecordingS3Settings | None = None
    recording_format: Literal["wav", "mp3", "opus"] = "wav"  # stored format (ffmpeg; the WAV is kept if it fails)
    recording_encrypt: bool = False
    recording_master_keys: dict[str, SecretStr] = Field(default_factory=dict)  # key id -> base64 of 32 bytes
    recording_master_key_id: str | None = None  # the key that wraps new data keys
    recording_pause_max_seconds: float = 180.0  # a PCI pause resumes by itself after this
    recording_job_max_attempts: int = 6
    recording_job_backoff_seconds: float = 5.0  # doubles per attempt
    recording_job_poll_seconds: float = 2.0
    recording_purge_interval_seconds: float = 3600.0
    recording_agents_see_own: bool = True  # agents may list/play the recordings of their own calls

    # --- knowledge base (kb, issue 17)
    kb_rules_file: Path | None = None  # default: <dialplans_dir>/kb/rules.yaml
    #: load the Markdown articles of kb_sample_dir (default: the shipped sample, kb/sample)
    #: into an empty knowledge base on start
    kb_load_sample: bool = True
    kb_sample_dir: Path | None = None

    @property
    def effective_kb_rules_file(self) -> Path:
        return self.kb_rules_file or (self.dialplans_dir / "kb" / "rules.yaml")
    # --- quality assurance (qa/; docs/qa.md)
    qa_forms_dir: Path = Path("./qa-forms")
    qa_forms_watch: bool = True
    qa_respond_days: float = 14  # the agent's window to acknowledge or dispute
    qa_leads: list[str] = Field(default_factory=list)  # subjects who resolve disputes (admins always may)
    qa_csat_question: str = "csat"  # IVR survey question whose answer is the call's CSAT
    qa_worklist_schedule: bool = True  # build each closed sampling period's work list (qa/scheduler.py)
    qa_worklist_at: str = "02:00"  # UTC time of day after which the last closed period is built
    qa_worklist_every: float = 300.0  # seconds between the scheduler's checks
    # --- web UI (issue 14): dispositions, pause-reason labels, wallboard thresholds; default web/config.yaml
    web_config: Path | None = None

    @model_validator(mode="after")
    def _check_servers(self) -> "Settings":
        names = [srv.name for srv in self.ami_servers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ami_servers: the name(s) {', '.join(dupes)} appear more than once (names must be unique)")
        known = set(names) or {self.ami_name}
        unknown = sorted({srv for srv in self.agent_servers.values() if srv not in known})
        if unknown:
            raise ValueError(f"agent_servers names unknown server(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return self

    @property
    def effective_ami_servers(self) -> list[AmiServerSettings]:
        """The servers callcore attaches to: ``ami_servers``, else the legacy single endpoint."""
        if self.ami_servers:
            return list(self.ami_servers)
        return [AmiServerSettings(name=self.ami_name, host=self.ami_host, port=self.ami_port,
                                  username=self.ami_username, secret=self.ami_secret)]

    @field_validator("only", mode="before")
    @classmethod
    def _split_only(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("voicemail_conf", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:  # CALLCORE_VOICEMAIL_CONF= (empty): do not check mailboxes
        return None if isinstance(v, str) and not v.strip() else v

    # ---- derived values
    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'callcore.db').resolve()}"

    @property
    def effective_sounds_dir(self) -> Path:
        return self.sounds_dir or (self.dialplans_dir / "sounds")

    @property
    def effective_recordings_dir(self) -> Path:
        return self.recordings_dir or (self.data_dir / "recordings")

    @property
    def effective_recording_store_dir(self) -> Path:
        return self.recording_store_dir or (self.data_dir / "recordings-store")

    def runs(self, part: Part) -> bool:
        return part in self.only

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence (first wins): explicit init kwargs > environment > YAML file > defaults.
        return (init_settings, env_settings, YamlFileSource(settings_cls))


class YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``CALLCORE_CONFIG_FILE`` (if any)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("CALLCORE_CONFIG_FILE")
        self._data: dict[str, Any] = {}
        if path:
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"CALLCORE_CONFIG_FILE={path}: no such file")
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: the settings file must be a YAML mapping")
            self._data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}
