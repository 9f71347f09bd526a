//! The cluster's messages on NATS and their binary encoding: length-prefixed
//! fields, no JSON around frames that already are JSON (a frame's bytes are
//! copied into a message once and shared, not parsed, on the way out).
//!
//! Down (core to one edge, subject [`super::subjects::node`]): [`Down`]
//! items, each with the sequence number the core's relay gave it, several
//! to a NATS message. Up (edge to core): [`Up`] on [`super::subjects::INBOUND`],
//! and the request/reply pairs [`Connect`]/[`Accepted`], [`Beat`] and the
//! forwarded HTTP request, whose answer may come in several chunks
//! ([`super::forward`]).
//!
//! Every decode checks lengths against what is left and fails with
//! [`WireError`]; nothing is trusted from the wire.

use axum::extract::ws::Utf8Bytes;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A message that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("cluster message does not parse: {0}")]
pub struct WireError(pub &'static str);

type R<T> = Result<T, WireError>;

/// Writing helpers over [`BytesMut`].
pub trait Put {
    fn str(&mut self, s: &str);
    fn blob(&mut self, b: &[u8]);
}

impl Put for BytesMut {
    fn str(&mut self, s: &str) {
        self.blob(s.as_bytes());
    }
    fn blob(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.put_slice(b);
    }
}

/// Reading helpers over [`Bytes`], checked.
pub struct Take(pub Bytes);

impl Take {
    fn need(&self, n: usize) -> R<()> {
        if self.0.remaining() < n { Err(WireError("truncated")) } else { Ok(()) }
    }
    pub fn u8(&mut self) -> R<u8> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    pub fn u16(&mut self) -> R<u16> {
        self.need(2)?;
        Ok(self.0.get_u16())
    }
    pub fn u32(&mut self) -> R<u32> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    pub fn u64(&mut self) -> R<u64> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }
    pub fn blob(&mut self) -> R<Bytes> {
        let n = self.u32()? as usize;
        self.need(n)?;
        Ok(self.0.split_to(n))
    }
    pub fn string(&mut self) -> R<String> {
        String::from_utf8(self.blob()?.to_vec()).map_err(|_| WireError("text is not UTF-8"))
    }
    pub fn text(&mut self) -> R<Utf8Bytes> {
        Utf8Bytes::try_from(self.blob()?).map_err(|_| WireError("frame is not UTF-8"))
    }
    pub fn is_empty(&self) -> bool {
        !self.0.has_remaining()
    }
}

/// One item of the core-to-edge stream, about one connection of the edge
/// (its id there) or one room.
#[derive(Debug, Clone, PartialEq)]
pub enum Down {
    /// Frames for one connection, in order.
    Conn { conn: u64, frames: Vec<Utf8Bytes> },
    /// A group commit's frames of one room, for every connection of the edge that has it open.
    Room { app: String, conv: String, frames: Vec<Utf8Bytes> },
    /// The connection opened the room (the core admitted it).
    Joined { conn: u64, app: String, conv: String },
    /// The connection no longer has the room open.
    Left { conn: u64, app: String, conv: String },
    /// Close the connection with this code and reason (the core ended it).
    Close { conn: u64, code: u16, reason: String },
}

impl Down {
    /// Bytes this item takes in a message, about (to split messages under NATS's max_payload).
    pub fn size(&self) -> usize {
        let frames = |fs: &[Utf8Bytes]| fs.iter().map(|f| f.len() + 4).sum::<usize>();
        32 + match self {
            Down::Conn { frames: fs, .. } => frames(fs),
            Down::Room { app, conv, frames: fs } => app.len() + conv.len() + frames(fs),
            Down::Joined { app, conv, .. } | Down::Left { app, conv, .. } => app.len() + conv.len(),
            Down::Close { reason, .. } => reason.len(),
        }
    }

    fn put(&self, b: &mut BytesMut) {
        let frames = |b: &mut BytesMut, fs: &[Utf8Bytes]| {
            b.put_u32(fs.len() as u32);
            for f in fs {
                b.str(f);
            }
        };
        match self {
            Down::Conn { conn, frames: fs } => {
                b.put_u8(1);
                b.put_u64(*conn);
                frames(b, fs);
            }
            Down::Room { app, conv, frames: fs } => {
                b.put_u8(2);
                b.str(app);
                b.str(conv);
                frames(b, fs);
            }
            Down::Joined { conn, app, conv } | Down::Left { conn, app, conv } => {
                b.put_u8(if matches!(self, Down::Joined { .. }) { 3 } else { 4 });
                b.put_u64(*conn);
                b.str(app);
                b.str(conv);
            }
            Down::Close { conn, code, reason } => {
                b.put_u8(5);
                b.put_u64(*conn);
                b.put_u16(*code);
                b.str(reason);
            }
        }
    }

    fn take(t: &mut Take) -> R<Down> {
        let frames = |t: &mut Take| -> R<Vec<Utf8Bytes>> {
            let n = t.u32()? as usize;
            // Each frame takes at least its 4-byte length: a count past that is a lie.
            if n > t.0.remaining() / 4 {
                return Err(WireError("frame count past the message"));
            }
            (0..n).map(|_| t.text()).collect()
        };
        Ok(match t.u8()? {
            1 => Down::Conn { conn: t.u64()?, frames: frames(t)? },
            2 => Down::Room { app: t.string()?, conv: t.string()?, frames: frames(t)? },
            3 => Down::Joined { conn: t.u64()?, app: t.string()?, conv: t.string()? },
            4 => Down::Left { conn: t.u64()?, app: t.string()?, conv: t.string()? },
            5 => Down::Close { conn: t.u64()?, code: t.u16()?, reason: t.string()? },
            _ => return Err(WireError("unknown item")),
        })
    }
}

/// Which stream an edge is reading: the core's boot id (a restarted core has
/// another) and the link (the core makes a new one, with a new relay, after
/// it ended the edge's connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Incarnation {
    pub core_boot: u64,
    pub link: u64,
}

/// A message of the core-to-edge stream: its [`Incarnation`], then items with their sequence numbers.
pub fn encode_down(at: Incarnation, items: &[(u64, Down)]) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + items.iter().map(|(_, d)| d.size()).sum::<usize>());
    b.put_u64(at.core_boot);
    b.put_u64(at.link);
    for (seq, item) in items {
        b.put_u64(*seq);
        item.put(&mut b);
    }
    b.freeze()
}

/// The incarnation and the items of a core-to-edge message.
pub fn decode_down(payload: Bytes) -> R<(Incarnation, Vec<(u64, Down)>)> {
    let mut t = Take(payload);
    let boot = Incarnation { core_boot: t.u64()?, link: t.u64()? };
    let mut items = Vec::new();
    while !t.is_empty() {
        let seq = t.u64()?;
        items.push((seq, Down::take(&mut t)?));
    }
    Ok((boot, items))
}

/// Which edge process sent something: its node id and the boot id it drew at
/// start (a restarted edge has another, and its old connections are gone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edge {
    pub node: String,
    pub boot: u64,
}

impl Edge {
    fn put(&self, b: &mut BytesMut) {
        b.str(&self.node);
        b.put_u64(self.boot);
    }
    fn take(t: &mut Take) -> R<Edge> {
        Ok(Edge { node: t.string()?, boot: t.u64()? })
    }
}

/// Edge to core, in order per edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Up {
    /// A client frame of a connection, as it came.
    Frame { edge: Edge, conn: u64, text: Utf8Bytes },
    /// The connection ended on the edge (the client left, timed out, was too slow).
    Gone { edge: Edge, conn: u64 },
    /// A binary frame came (it is answered `invalid_frame`).
    Binary { edge: Edge, conn: u64 },
}

impl Up {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            Up::Frame { edge, conn, text } => {
                b.put_u8(1);
                edge.put(&mut b);
                b.put_u64(*conn);
                b.str(text);
            }
            Up::Gone { edge, conn } | Up::Binary { edge, conn } => {
                b.put_u8(if matches!(self, Up::Gone { .. }) { 2 } else { 3 });
                edge.put(&mut b);
                b.put_u64(*conn);
            }
        }
        b.freeze()
    }

    pub fn decode(payload: Bytes) -> R<Up> {
        let mut t = Take(payload);
        Ok(match t.u8()? {
            1 => Up::Frame { edge: Edge::take(&mut t)?, conn: t.u64()?, text: t.text()? },
            2 => Up::Gone { edge: Edge::take(&mut t)?, conn: t.u64()? },
            3 => Up::Binary { edge: Edge::take(&mut t)?, conn: t.u64()? },
            _ => return Err(WireError("unknown item")),
        })
    }
}

/// Request: a client with a verified token wants a realtime connection on an edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    pub edge: Edge,
    pub conn: u64,
    pub app: String,
    pub user: String,
    pub name: Option<String>,
}

impl Connect {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.edge.put(&mut b);
        b.put_u64(self.conn);
        b.str(&self.app);
        b.str(&self.user);
        match &self.name {
            Some(n) => {
                b.put_u8(1);
                b.str(n);
            }
            None => b.put_u8(0),
        }
        b.freeze()
    }

    pub fn decode(payload: Bytes) -> R<Connect> {
        let mut t = Take(payload);
        let (edge, conn, app, user) = (Edge::take(&mut t)?, t.u64()?, t.string()?, t.string()?);
        let name = if t.u8()? == 1 { Some(t.string()?) } else { None };
        Ok(Connect { edge, conn, app, user, name })
    }
}

/// The core's answer to [`Connect`] and to [`Beat`].
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Admitted; the stream the edge's items come on.
    Yes { at: Incarnation },
    /// Refused with this HTTP answer (status, JSON error body), to give the client as it is.
    No { status: u16, body: Bytes },
}

impl Accepted {
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::new();
        match self {
            Accepted::Yes { at } => {
                b.put_u8(1);
                b.put_u64(at.core_boot);
                b.put_u64(at.link);
            }
            Accepted::No { status, body } => {
                b.put_u8(2);
                b.put_u16(*status);
                b.blob(body);
            }
        }
        b.freeze()
    }

    pub fn decode(payload: Bytes) -> R<Accepted> {
        let mut t = Take(payload);
        Ok(match t.u8()? {
            1 => Accepted::Yes { at: Incarnation { core_boot: t.u64()?, link: t.u64()? } },
            2 => Accepted::No { status: t.u16()?, body: t.blob()? },
            _ => return Err(WireError("unknown answer")),
        })
    }
}

/// Request: an edge is alive (answered with [`Accepted::Yes`]).
pub fn encode_beat(edge: &Edge) -> Bytes {
    let mut b = BytesMut::new();
    edge.put(&mut b);
    b.freeze()
}

pub fn decode_beat(payload: Bytes) -> R<Edge> {
    Edge::take(&mut Take(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_items_round_trip_with_their_sequence_numbers() {
        let items = vec![
            (7, Down::Conn { conn: 3, frames: vec!["{\"type\":\"ack\"}".into()] }),
            (8, Down::Room { app: "demo".into(), conv: "lobby".into(), frames: vec!["a".into(), "ü".into()] }),
            (9, Down::Joined { conn: 3, app: "demo".into(), conv: "lobby".into() }),
            (10, Down::Left { conn: 3, app: "demo".into(), conv: "lobby".into() }),
            (12, Down::Close { conn: 3, code: 1008, reason: "slow consumer".into() }),
        ];
        let at = Incarnation { core_boot: 42, link: 7 };
        let (back_at, back) = decode_down(encode_down(at, &items)).unwrap();
        assert_eq!(back_at, at);
        assert_eq!(back, items);
    }

    #[test]
    fn up_and_requests_round_trip() {
        let edge = Edge { node: "e1".into(), boot: 5 };
        for up in [
            Up::Frame { edge: edge.clone(), conn: 1, text: "{}".into() },
            Up::Gone { edge: edge.clone(), conn: 1 },
            Up::Binary { edge: edge.clone(), conn: 1 },
        ] {
            assert_eq!(Up::decode(up.encode()).unwrap(), up);
        }
        let c = Connect { edge: edge.clone(), conn: 9, app: "demo".into(), user: "u".into(), name: Some("U".into()) };
        assert_eq!(Connect::decode(c.encode()).unwrap(), c);
        let no = Accepted::No { status: 429, body: Bytes::from_static(b"{}") };
        assert_eq!(Accepted::decode(no.encode()).unwrap(), no);
        assert_eq!(decode_beat(encode_beat(&edge)).unwrap(), edge);
    }

    #[test]
    fn truncated_or_lying_messages_are_refused_not_panicked_on() {
        let full = encode_down(
            Incarnation { core_boot: 1, link: 1 },
            &[(1, Down::Room { app: "a".into(), conv: "c".into(), frames: vec!["x".into()] })],
        );
        for n in 0..full.len() {
            let cut = full.slice(..n);
            // The incarnation alone is a valid empty message.
            if n == 16 {
                continue;
            }
            assert!(decode_down(cut).is_err(), "a message cut at {n} bytes parsed");
        }
        let mut lying = BytesMut::new();
        lying.put_u64(1);
        lying.put_u64(1);
        lying.put_u64(1);
        lying.put_u8(1);
        lying.put_u64(1);
        lying.put_u32(u32::MAX);
        assert!(decode_down(lying.freeze()).is_err());
    }
}
