//! SQLite storage: the schema and every query, as plain functions over a
//! `rusqlite::Connection`. [`Db`] is the cheap-clone handle the rest of the
//! server holds: one connection behind a std `Mutex`, used only from
//! `spawn_blocking` threads, so no lock is ever held across an `.await`.
//! One connection means writes are serialized. Messages and users created on
//! connect are written by the group-commit writer ([`crate::writer`]), many
//! jobs per transaction; it also keeps the order of broadcasts (commit order).
//!
//! Durability: WAL journal with `synchronous=FULL`; a write returns only after
//! its commit, and only then does anyone acknowledge it. A database file
//! belongs to one server process at a time (exclusive locking mode, taken
//! at open); statements wait up to 5 s for a lock held elsewhere.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use supergroup_protocol::rest::{
    Access, Conversation, ConversationUpsert, Custom, Message, MessageType, Notify, Origin, ParticipantSettings, User,
    UserConversation, UserUpsert, WebhookRegistration,
};

/// The database handle.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// How long a statement waits for a lock held elsewhere (a backup tool, a
/// checkpoint) before it fails with `SQLITE_BUSY`.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Db {
    /// Opens (creating if needed) the database at `path` (`:memory:` for none).
    ///
    /// A file is opened in SQLite's exclusive locking mode and locked at
    /// once, so a second server process on the same file fails here with a
    /// clear error instead of both writing to it; the lock lasts until
    /// [`Db::close`] or the process ends (also by SIGKILL).
    pub fn open(path: &str) -> anyhow::Result<Db> {
        let conn = Connection::open(path)?;
        if path != ":memory:" {
            // Before the first WAL access, so no shared-memory index is made either.
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            conn.execute_batch("PRAGMA journal_mode = WAL; BEGIN EXCLUSIVE; COMMIT;").map_err(|e| {
                match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => anyhow::anyhow!(
                        "the database file {path} is in use by another process (another supergroup-server?); \
                         refusing to share it ({e})"
                    ),
                    _ => anyhow::anyhow!("cannot open the database file {path}: {e}"),
                }
            })?;
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Db { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Closes the database file (releasing its lock): the connection is
    /// replaced by an empty in-memory one, so a late caller gets an error
    /// ("no such table"), never a write to the file.
    pub fn close(&self) {
        let empty = Connection::open_in_memory().expect("an in-memory SQLite database opens");
        let old = std::mem::replace(&mut *self.conn.lock().unwrap_or_else(|p| p.into_inner()), empty);
        if let Err((_, e)) = old.close() {
            tracing::warn!(error = %e, "closing the database");
        }
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Connection) -> R + Send + 'static) -> R {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the data is still consistent
            // (every write is a transaction), so keep serving.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .expect("database closures do not panic")
    }
}

const SCHEMA: &str = r#"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = OFF;
CREATE TABLE IF NOT EXISTS users (
    app TEXT NOT NULL, id TEXT NOT NULL, name TEXT, email TEXT, phone TEXT, role TEXT,
    custom TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL,
    PRIMARY KEY (app, id));
CREATE TABLE IF NOT EXISTS conversations (
    app TEXT NOT NULL, id TEXT NOT NULL, subject TEXT, custom TEXT NOT NULL DEFAULT '{}',
    guest_access INTEGER, created_at INTEGER NOT NULL, last_message_at INTEGER,
    PRIMARY KEY (app, id));
CREATE TABLE IF NOT EXISTS participants (
    app TEXT NOT NULL, conv TEXT NOT NULL, user TEXT NOT NULL, access TEXT NOT NULL, notify TEXT NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0, joined_seq INTEGER NOT NULL,
    PRIMARY KEY (app, conv, user));
CREATE INDEX IF NOT EXISTS participants_by_user ON participants (app, user);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, conv TEXT NOT NULL, id TEXT NOT NULL,
    sender TEXT, type TEXT NOT NULL, text TEXT NOT NULL, custom TEXT NOT NULL, created_at INTEGER NOT NULL,
    origin TEXT NOT NULL, idem_key TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (app, id);
CREATE INDEX IF NOT EXISTS messages_by_conv ON messages (app, conv, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_idem ON messages (app, conv, idem_key) WHERE idem_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS webhooks (app TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT);
"#;

type Sql<T> = rusqlite::Result<T>;

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("maps and lists of strings serialize")
}

fn from_json<T: serde::de::DeserializeOwned + Default>(s: Option<String>) -> T {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

// ---- users ----

pub fn get_user(c: &Connection, app: &str, id: &str) -> Sql<Option<User>> {
    c.query_row(
        "SELECT id, name, email, phone, role, custom, created_at FROM users WHERE app = ?1 AND id = ?2",
        params![app, id],
        |r| {
            Ok(User {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get::<_, Option<String>>(2)?.and_then(|s| serde_json::from_str(&s).ok()),
                phone: r.get::<_, Option<String>>(3)?.and_then(|s| serde_json::from_str(&s).ok()),
                role: r.get(4)?,
                custom: from_json(r.get(5)?),
                created_at: r.get(6)?,
            })
        },
    )
    .optional()
}

/// Creates the user if unknown; returns whether it was created.
pub fn ensure_user(c: &Connection, app: &str, id: &str, name: Option<&str>, now: i64) -> Sql<bool> {
    let n = c
        .prepare_cached("INSERT INTO users (app, id, name, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")?
        .execute(params![app, id, name, now])?;
    Ok(n == 1)
}

/// Creates or merges a user: fields present in `u` replace the stored ones (`custom` as a whole map).
pub fn upsert_user(c: &Connection, app: &str, id: &str, u: &UserUpsert, now: i64) -> Sql<()> {
    ensure_user(c, app, id, None, now)?;
    if let Some(name) = &u.name {
        c.execute("UPDATE users SET name = ?3 WHERE app = ?1 AND id = ?2", params![app, id, name])?;
    }
    if let Some(email) = &u.email {
        let v = email.as_ref().map(to_json);
        c.execute("UPDATE users SET email = ?3 WHERE app = ?1 AND id = ?2", params![app, id, v])?;
    }
    if let Some(phone) = &u.phone {
        let v = phone.as_ref().map(to_json);
        c.execute("UPDATE users SET phone = ?3 WHERE app = ?1 AND id = ?2", params![app, id, v])?;
    }
    if let Some(role) = &u.role {
        c.execute("UPDATE users SET role = ?3 WHERE app = ?1 AND id = ?2", params![app, id, role])?;
    }
    if let Some(custom) = &u.custom {
        set_custom(c, "users", app, id, custom)?;
    }
    Ok(())
}

/// Replaces the stored custom map of a user or conversation.
fn set_custom(c: &Connection, table: &str, app: &str, id: &str, custom: &Custom) -> Sql<()> {
    let sql = format!("UPDATE {table} SET custom = ?3 WHERE app = ?1 AND id = ?2");
    c.execute(&sql, params![app, id, to_json(custom)])?;
    Ok(())
}

// ---- conversations ----

/// The stored fields of a conversation, `guest_access` unresolved (`None`: the app's default).
pub struct ConvRow {
    pub subject: Option<String>,
    pub custom: Custom,
    pub guest_access: Option<bool>,
    pub created_at: i64,
    pub last_message_at: Option<i64>,
}

pub fn get_conv(c: &Connection, app: &str, id: &str) -> Sql<Option<ConvRow>> {
    c.prepare_cached(
        "SELECT subject, custom, guest_access, created_at, last_message_at FROM conversations WHERE app = ?1 AND id = ?2",
    )?
    .query_row(
        params![app, id],
        |r| {
            Ok(ConvRow {
                subject: r.get(0)?,
                custom: from_json(r.get(1)?),
                guest_access: r.get(2)?,
                created_at: r.get(3)?,
                last_message_at: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Creates or merges a conversation's own fields (not its participants); returns whether it was created.
pub fn upsert_conv(c: &Connection, app: &str, id: &str, u: &ConversationUpsert, now: i64) -> Sql<bool> {
    let created = c.execute(
        "INSERT INTO conversations (app, id, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![app, id, now],
    )? == 1;
    if let Some(subject) = &u.subject {
        c.execute("UPDATE conversations SET subject = ?3 WHERE app = ?1 AND id = ?2", params![app, id, subject])?;
    }
    if let Some(ga) = u.guest_access {
        c.execute("UPDATE conversations SET guest_access = ?3 WHERE app = ?1 AND id = ?2", params![app, id, ga])?;
    }
    if let Some(custom) = &u.custom {
        set_custom(c, "conversations", app, id, custom)?;
    }
    Ok(created)
}

/// Deletes a conversation, its participants and its messages; returns whether it existed.
/// Call inside a transaction (or savepoint), so it is all or nothing.
pub fn delete_conv(c: &Connection, app: &str, id: &str) -> Sql<bool> {
    c.execute("DELETE FROM messages WHERE app = ?1 AND conv = ?2", params![app, id])?;
    c.execute("DELETE FROM participants WHERE app = ?1 AND conv = ?2", params![app, id])?;
    Ok(c.execute("DELETE FROM conversations WHERE app = ?1 AND id = ?2", params![app, id])? == 1)
}

/// The conversation as the API shows it.
pub fn conv_view(c: &Connection, app: &str, id: &str, app_guest_access: bool) -> Sql<Option<Conversation>> {
    let Some(row) = get_conv(c, app, id)? else { return Ok(None) };
    Ok(Some(Conversation {
        id: id.into(),
        subject: row.subject,
        custom: row.custom,
        guest_access: row.guest_access.unwrap_or(app_guest_access),
        created_at: row.created_at,
        last_message: last_message(c, app, id)?,
        participants: participants(c, app, id)?.into_iter().collect(),
    }))
}

// ---- participants ----

fn access_str(a: Access) -> &'static str {
    match a {
        Access::ReadWrite => "ReadWrite",
        Access::Read => "Read",
    }
}

fn notify_str(n: Notify) -> &'static str {
    match n {
        Notify::On => "true",
        Notify::Off => "false",
        Notify::MentionsOnly => "MentionsOnly",
    }
}

fn settings(access: String, notify: String) -> ParticipantSettings {
    ParticipantSettings {
        access: if access == "Read" { Access::Read } else { Access::ReadWrite },
        notify: match notify.as_str() {
            "false" => Notify::Off,
            "MentionsOnly" => Notify::MentionsOnly,
            _ => Notify::On,
        },
    }
}

/// Every participant of a conversation, by user id.
pub fn participants(c: &Connection, app: &str, conv: &str) -> Sql<BTreeMap<String, ParticipantSettings>> {
    let mut st = c.prepare_cached("SELECT user, access, notify FROM participants WHERE app = ?1 AND conv = ?2")?;
    let rows = st.query_map(params![app, conv], |r| Ok((r.get::<_, String>(0)?, settings(r.get(1)?, r.get(2)?))))?;
    rows.collect()
}

pub fn participant(c: &Connection, app: &str, conv: &str, user: &str) -> Sql<Option<ParticipantSettings>> {
    c.prepare_cached("SELECT access, notify FROM participants WHERE app = ?1 AND conv = ?2 AND user = ?3")?
        .query_row(params![app, conv, user], |r| Ok(settings(r.get(0)?, r.get(1)?)))
        .optional()
}

pub fn count_participants(c: &Connection, app: &str, conv: &str) -> Sql<u32> {
    c.query_row("SELECT COUNT(*) FROM participants WHERE app = ?1 AND conv = ?2", params![app, conv], |r| r.get(0))
}

/// Adds a participant who is not one yet; unread starts after the current last message.
pub fn insert_participant(c: &Connection, app: &str, conv: &str, user: &str, s: ParticipantSettings) -> Sql<()> {
    let seq = max_seq(c, app, conv)?;
    c.execute(
        "INSERT INTO participants (app, conv, user, access, notify, last_read_seq, joined_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![app, conv, user, access_str(s.access), notify_str(s.notify), seq],
    )?;
    Ok(())
}

pub fn update_participant(c: &Connection, app: &str, conv: &str, user: &str, s: ParticipantSettings) -> Sql<()> {
    c.execute(
        "UPDATE participants SET access = ?4, notify = ?5 WHERE app = ?1 AND conv = ?2 AND user = ?3",
        params![app, conv, user, access_str(s.access), notify_str(s.notify)],
    )?;
    Ok(())
}

/// Removes a participant; returns whether they were one.
pub fn delete_participant(c: &Connection, app: &str, conv: &str, user: &str) -> Sql<bool> {
    Ok(c.execute("DELETE FROM participants WHERE app = ?1 AND conv = ?2 AND user = ?3", params![app, conv, user])? == 1)
}

/// Marks everything in the conversation read for a participant; false if not a participant.
pub fn mark_read(c: &Connection, app: &str, conv: &str, user: &str) -> Sql<bool> {
    let seq = max_seq(c, app, conv)?;
    Ok(c.execute(
        "UPDATE participants SET last_read_seq = ?4 WHERE app = ?1 AND conv = ?2 AND user = ?3",
        params![app, conv, user, seq],
    )? == 1)
}

// ---- messages ----

fn max_seq(c: &Connection, app: &str, conv: &str) -> Sql<i64> {
    c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE app = ?1 AND conv = ?2")?
        .query_row(params![app, conv], |r| r.get(0))
}

const MESSAGE_COLUMNS: &str = "id, conv, sender, type, text, custom, created_at, origin";

fn message_row(r: &rusqlite::Row<'_>) -> Sql<Message> {
    Ok(Message {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        sender_id: r.get(2)?,
        kind: if r.get::<_, String>(3)? == "SystemMessage" {
            MessageType::SystemMessage
        } else {
            MessageType::UserMessage
        },
        text: r.get(4)?,
        custom: from_json(r.get(5)?),
        created_at: r.get(6)?,
        origin: if r.get::<_, String>(7)? == "realtime" { Origin::Realtime } else { Origin::Rest },
    })
}

/// The message already stored under an idempotency key, if any.
pub fn find_idempotent(c: &Connection, app: &str, conv: &str, key: &str) -> Sql<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE app = ?1 AND conv = ?2 AND idem_key = ?3");
    c.prepare_cached(&sql)?.query_row(params![app, conv, key], message_row).optional()
}

/// Stores a message; `createdAt` never goes backwards within a conversation.
pub fn insert_message(c: &Connection, app: &str, mut msg: Message, idem_key: Option<&str>, now: i64) -> Sql<Message> {
    let last: Option<i64> = c
        .prepare_cached("SELECT last_message_at FROM conversations WHERE app = ?1 AND id = ?2")?
        .query_row(params![app, msg.conversation_id], |r| r.get(0))?;
    msg.created_at = now.max(last.unwrap_or(0));
    let kind = match msg.kind {
        MessageType::UserMessage => "UserMessage",
        MessageType::SystemMessage => "SystemMessage",
    };
    let origin = match msg.origin {
        Origin::Rest => "rest",
        Origin::Realtime => "realtime",
    };
    c.prepare_cached(
        "INSERT INTO messages (app, conv, id, sender, type, text, custom, created_at, origin, idem_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        app,
        msg.conversation_id,
        msg.id,
        msg.sender_id,
        kind,
        msg.text,
        to_json(&msg.custom),
        msg.created_at,
        origin,
        idem_key
    ])?;
    c.prepare_cached("UPDATE conversations SET last_message_at = ?3 WHERE app = ?1 AND id = ?2")?.execute(params![
        app,
        msg.conversation_id,
        msg.created_at
    ])?;
    Ok(msg)
}

pub fn last_message(c: &Connection, app: &str, conv: &str) -> Sql<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE app = ?1 AND conv = ?2 ORDER BY seq DESC LIMIT 1");
    c.prepare_cached(&sql)?.query_row(params![app, conv], message_row).optional()
}

/// A `startingAfter` that names nothing in the list.
pub struct UnknownCursor;

/// A page of a conversation's messages, newest first.
pub fn list_messages(
    c: &Connection,
    app: &str,
    conv: &str,
    limit: usize,
    starting_after: Option<&str>,
) -> Sql<Result<Vec<Message>, UnknownCursor>> {
    let before = match starting_after {
        None => i64::MAX,
        Some(id) => {
            let seq: Option<i64> = c
                .query_row(
                    "SELECT seq FROM messages WHERE app = ?1 AND conv = ?2 AND id = ?3",
                    params![app, conv, id],
                    |r| r.get(0),
                )
                .optional()?;
            match seq {
                Some(s) => s,
                None => return Ok(Err(UnknownCursor)),
            }
        }
    };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE app = ?1 AND conv = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(params![app, conv, before, limit as i64], message_row)?;
    Ok(Ok(rows.collect::<Sql<Vec<_>>>()?))
}

// ---- user conversations ----

/// A page of the conversations where `user` is a participant, latest activity
/// first, then id ascending. Only the page is read: the cursor's position is
/// looked up, then at most `limit` rows after it come from the index-ordered
/// query, so a user in thousands of conversations costs one page of work.
pub fn user_conversations(
    c: &Connection,
    app: &str,
    user: &str,
    app_guest_access: bool,
    limit: usize,
    starting_after: Option<&str>,
) -> Sql<Result<Vec<UserConversation>, UnknownCursor>> {
    // (activity, id) orders the list: activity descending, then id ascending.
    let after: Option<(i64, String)> = match starting_after {
        None => None,
        Some(cursor) => {
            let activity = c
                .prepare_cached(
                    "SELECT COALESCE(c.last_message_at, c.created_at) \
                     FROM participants p JOIN conversations c ON c.app = p.app AND c.id = p.conv \
                     WHERE p.app = ?1 AND p.user = ?2 AND p.conv = ?3",
                )?
                .query_row(params![app, user, cursor], |r| r.get::<_, i64>(0))
                .optional()?;
            match activity {
                Some(a) => Some((a, cursor.to_string())),
                None => return Ok(Err(UnknownCursor)),
            }
        }
    };
    let (after_activity, after_id) = match &after {
        Some((a, id)) => (Some(*a), Some(id.as_str())),
        None => (None, None),
    };
    let mut st = c.prepare_cached(
        "SELECT c.id, p.last_read_seq FROM participants p JOIN conversations c ON c.app = p.app AND c.id = p.conv \
         WHERE p.app = ?1 AND p.user = ?2 AND (?3 IS NULL \
           OR COALESCE(c.last_message_at, c.created_at) < ?3 \
           OR (COALESCE(c.last_message_at, c.created_at) = ?3 AND c.id > ?4)) \
         ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id ASC LIMIT ?5",
    )?;
    let page: Vec<(String, i64)> = st
        .query_map(params![app, user, after_activity, after_id, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Sql<_>>()?;
    let mut out = Vec::with_capacity(page.len());
    for (id, last_read) in page {
        let Some(conversation) = conv_view(c, app, &id, app_guest_access)? else { continue };
        let unread: i64 = c
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE app = ?1 AND conv = ?2 AND seq > ?3 \
                 AND (sender IS NULL OR sender <> ?4)",
            )?
            .query_row(params![app, id, last_read, user], |r| r.get(0))?;
        out.push(UserConversation { conversation, is_unread: unread > 0, unread_count: unread as u64 });
    }
    Ok(Ok(out))
}

// ---- webhooks ----

pub fn save_webhook(c: &Connection, app: &str, url: &str, events: Option<&Vec<String>>) -> Sql<()> {
    c.execute(
        "INSERT INTO webhooks (app, url, events) VALUES (?1, ?2, ?3) \
         ON CONFLICT (app) DO UPDATE SET url = excluded.url, events = excluded.events",
        params![app, url, events.map(to_json)],
    )?;
    Ok(())
}

pub fn delete_webhook(c: &Connection, app: &str) -> Sql<()> {
    c.execute("DELETE FROM webhooks WHERE app = ?1", params![app])?;
    Ok(())
}

/// Every registered webhook, by app id.
pub fn load_webhooks(c: &Connection) -> Sql<Vec<(String, WebhookRegistration)>> {
    let mut st = c.prepare("SELECT app, url, events FROM webhooks")?;
    let rows = st.query_map([], |r| {
        let events = r.get::<_, Option<String>>(2)?.and_then(|s| serde_json::from_str(&s).ok());
        Ok((r.get(0)?, WebhookRegistration { url: r.get(1)?, events }))
    })?;
    rows.collect()
}
