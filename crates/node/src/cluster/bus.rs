//! The cluster bus, first part: Redis 7.0's `clusterMsg` (cluster.h) encoded and decoded byte for
//! byte — the 2256-byte header in network byte order, PING/PONG/MEET gossip sections (104 bytes
//! each) and the ping extensions (hostname). No IO here; the links are to come.

use super::slot::SLOTS;

pub const SIG: &[u8; 4] = b"RCmb";
pub const PROTO_VER: u16 = 1;
pub const NAMELEN: usize = 40;
pub const IPLEN: usize = 46;
/// sizeof(clusterMsg) - sizeof(union clusterMsgData).
pub const HEADER_LEN: usize = 2256;
/// sizeof(clusterMsgDataGossip).
pub const GOSSIP_LEN: usize = 104;

pub const PING: u16 = 0;
pub const PONG: u16 = 1;
pub const MEET: u16 = 2;
pub const FAIL: u16 = 3;
pub const FAILOVER_AUTH_REQUEST: u16 = 5;
pub const FAILOVER_AUTH_ACK: u16 = 6;
pub const UPDATE: u16 = 7;
pub const MFSTART: u16 = 8;
pub const PUBLISH: u16 = 4;
pub const PUBLISHSHARD: u16 = 10;

/// CLUSTERMSG_FLAG0_PAUSED: a master's clients are paused for a manual failover.
pub const FLAG0_PAUSED: u8 = 1 << 0;
/// CLUSTERMSG_FLAG0_FORCEACK: vote even though the master is not failing (manual failover).
pub const FLAG0_FORCEACK: u8 = 1 << 1;

/// CLUSTERMSG_FLAG0_EXT_DATA.
pub const FLAG0_EXT_DATA: u8 = 1 << 2;
/// CLUSTERMSG_EXT_TYPE_HOSTNAME.
pub const EXT_HOSTNAME: u16 = 0;

/// One gossip entry (clusterMsgDataGossip).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gossip {
    pub name: String,
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

/// UPDATE's body (clusterMsgDataUpdate): a node's config epoch and slots, sent to a node that
/// claims slots with an older configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateData {
    pub config_epoch: u64,
    pub node: String,
    pub slots: Box<[u8; SLOTS / 8]>,
}

impl UpdateData {
    pub fn claims(&self, slot: usize) -> bool {
        self.slots[slot / 8] & (1 << (slot & 7)) != 0
    }
}

/// A decoded message: the header fields and, for PING/PONG/MEET, gossip and hostname.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub kind: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: String,
    pub myslots: Box<[u8; SLOTS / 8]>,
    /// Empty for a master (all zero bytes on the wire).
    pub slaveof: String,
    /// Empty when not announced (all zero bytes).
    pub myip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    pub state: u8,
    pub mflags: [u8; 3],
    pub gossip: Vec<Gossip>,
    pub hostname: String,
    /// FAIL: the failing node's name.
    pub fail_node: String,
    /// UPDATE: the node's configuration.
    pub update: Option<Box<UpdateData>>,
    /// PUBLISH / PUBLISHSHARD (clusterMsgDataPublish): the channel and the message.
    pub channel: Vec<u8>,
    pub message: Vec<u8>,
}

impl Default for Msg {
    fn default() -> Self {
        Msg {
            kind: PING,
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender: String::new(),
            myslots: Box::new([0; SLOTS / 8]),
            slaveof: String::new(),
            myip: String::new(),
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
            gossip: Vec::new(),
            hostname: String::new(),
            fail_node: String::new(),
            update: None,
            channel: Vec::new(),
            message: Vec::new(),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str, len: usize) {
    let b = s.as_bytes();
    let n = b.len().min(len);
    out.extend_from_slice(&b[..n]);
    out.resize(out.len() + (len - n), 0);
}

fn get_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_be_bytes(b[i..i + 8].try_into().unwrap())
}

/// Hostname extension length: 8-byte header + the string, its NUL, padded to 8 (getHostnamePingExtSize).
fn hostname_ext_len(h: &str) -> usize {
    8 + (h.len() + 1).div_ceil(8) * 8
}

impl Msg {
    /// Encode as Redis's clusterBuildMessageHdr + clusterSendPing would.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + self.gossip.len() * GOSSIP_LEN);
        b.extend_from_slice(SIG);
        b.extend_from_slice(&[0; 4]); // totlen, set below
        b.extend_from_slice(&PROTO_VER.to_be_bytes());
        b.extend_from_slice(&self.port.to_be_bytes());
        b.extend_from_slice(&self.kind.to_be_bytes());
        let count = if self.kind <= MEET { self.gossip.len() as u16 } else { 0 };
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&self.current_epoch.to_be_bytes());
        b.extend_from_slice(&self.config_epoch.to_be_bytes());
        b.extend_from_slice(&self.offset.to_be_bytes());
        put_str(&mut b, &self.sender, NAMELEN);
        b.extend_from_slice(&self.myslots[..]);
        put_str(&mut b, &self.slaveof, NAMELEN);
        put_str(&mut b, &self.myip, IPLEN);
        let ext = self.kind <= MEET && !self.hostname.is_empty();
        b.extend_from_slice(&(ext as u16).to_be_bytes());
        b.extend_from_slice(&[0; 30]);
        b.extend_from_slice(&self.pport.to_be_bytes());
        b.extend_from_slice(&self.cport.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        b.push(self.state);
        let mut mflags = self.mflags;
        if ext {
            mflags[0] |= FLAG0_EXT_DATA;
        }
        b.extend_from_slice(&mflags);
        debug_assert_eq!(b.len(), HEADER_LEN);
        match self.kind {
            PING | PONG | MEET => {
                for g in &self.gossip {
                    put_str(&mut b, &g.name, NAMELEN);
                    b.extend_from_slice(&g.ping_sent.to_be_bytes());
                    b.extend_from_slice(&g.pong_received.to_be_bytes());
                    put_str(&mut b, &g.ip, IPLEN);
                    b.extend_from_slice(&g.port.to_be_bytes());
                    b.extend_from_slice(&g.cport.to_be_bytes());
                    b.extend_from_slice(&g.flags.to_be_bytes());
                    b.extend_from_slice(&g.pport.to_be_bytes());
                    b.extend_from_slice(&[0; 2]);
                }
                if ext {
                    let len = hostname_ext_len(&self.hostname);
                    b.extend_from_slice(&(len as u32).to_be_bytes());
                    b.extend_from_slice(&EXT_HOSTNAME.to_be_bytes());
                    b.extend_from_slice(&[0; 2]);
                    put_str(&mut b, &self.hostname, len - 8);
                }
            }
            FAIL => put_str(&mut b, &self.fail_node, NAMELEN),
            UPDATE => {
                let u = self.update.as_deref().expect("UPDATE without its body");
                b.extend_from_slice(&u.config_epoch.to_be_bytes());
                put_str(&mut b, &u.node, NAMELEN);
                b.extend_from_slice(&u.slots[..]);
            }
            PUBLISH | PUBLISHSHARD => {
                b.extend_from_slice(&(self.channel.len() as u32).to_be_bytes());
                b.extend_from_slice(&(self.message.len() as u32).to_be_bytes());
                b.extend_from_slice(&self.channel);
                b.extend_from_slice(&self.message);
            }
            _ => {}
        }
        let total = b.len() as u32;
        b[4..8].copy_from_slice(&total.to_be_bytes());
        b
    }

    /// The total length announced by a message's first 8 bytes (None: not a bus message).
    pub fn frame_len(first8: &[u8]) -> Option<usize> {
        if first8.len() < 8 || &first8[..4] != SIG {
            return None;
        }
        Some(u32_at(first8, 4) as usize)
    }

    /// Decode one whole message; Err with the reason Redis would log for a message it drops.
    pub fn decode(b: &[u8]) -> Result<Msg, String> {
        if b.len() < HEADER_LEN || &b[..4] != SIG {
            return Err("message too short or bad signature".into());
        }
        let totlen = u32_at(b, 4) as usize;
        if totlen != b.len() {
            return Err(format!("length {} but {} bytes", totlen, b.len()));
        }
        if u16_at(b, 8) != PROTO_VER {
            return Err("unknown protocol version".into());
        }
        let kind = u16_at(b, 12);
        let count = u16_at(b, 14) as usize;
        let mut m = Msg {
            kind,
            port: u16_at(b, 10),
            current_epoch: u64_at(b, 16),
            config_epoch: u64_at(b, 24),
            offset: u64_at(b, 32),
            sender: get_str(&b[40..80]),
            slaveof: get_str(&b[2128..2168]),
            myip: get_str(&b[2168..2214]),
            pport: u16_at(b, 2246),
            cport: u16_at(b, 2248),
            flags: u16_at(b, 2250),
            state: b[2252],
            mflags: [b[2253], b[2254], b[2255]],
            ..Default::default()
        };
        m.myslots.copy_from_slice(&b[80..2128]);
        let extensions = u16_at(b, 2214) as usize;
        match kind {
            PING | PONG | MEET => {
                let mut i = HEADER_LEN;
                if b.len() < i + count * GOSSIP_LEN {
                    return Err("gossip section past the end".into());
                }
                for _ in 0..count {
                    let g = &b[i..i + GOSSIP_LEN];
                    m.gossip.push(Gossip {
                        name: get_str(&g[0..40]),
                        ping_sent: u32_at(g, 40),
                        pong_received: u32_at(g, 44),
                        ip: get_str(&g[48..94]),
                        port: u16_at(g, 94),
                        cport: u16_at(g, 96),
                        flags: u16_at(g, 98),
                        pport: u16_at(g, 100),
                    });
                    i += GOSSIP_LEN;
                }
                if m.mflags[0] & FLAG0_EXT_DATA != 0 {
                    for _ in 0..extensions {
                        if b.len() < i + 8 {
                            return Err("extension past the end".into());
                        }
                        let len = u32_at(b, i) as usize;
                        if len < 8 || b.len() < i + len {
                            return Err("bad extension length".into());
                        }
                        if u16_at(b, i + 4) == EXT_HOSTNAME {
                            let data = &b[i + 8..i + len];
                            if data.last() != Some(&0) {
                                return Err("hostname extension without NUL".into());
                            }
                            m.hostname = get_str(data);
                        }
                        i += len;
                    }
                }
                if i != b.len() {
                    return Err(format!("length {} but expected {}", b.len(), i));
                }
            }
            FAIL => {
                if b.len() != HEADER_LEN + NAMELEN {
                    return Err("bad FAIL length".into());
                }
                m.fail_node = get_str(&b[HEADER_LEN..]);
            }
            UPDATE => {
                if b.len() != HEADER_LEN + 8 + NAMELEN + SLOTS / 8 {
                    return Err("bad UPDATE length".into());
                }
                let d = &b[HEADER_LEN..];
                let mut slots = Box::new([0u8; SLOTS / 8]);
                slots.copy_from_slice(&d[8 + NAMELEN..]);
                m.update =
                    Some(Box::new(UpdateData { config_epoch: u64_at(d, 0), node: get_str(&d[8..8 + NAMELEN]), slots }));
            }
            PUBLISH | PUBLISHSHARD => {
                if b.len() < HEADER_LEN + 8 {
                    return Err("bad PUBLISH length".into());
                }
                let clen = u32_at(b, HEADER_LEN) as usize;
                let mlen = u32_at(b, HEADER_LEN + 4) as usize;
                let start = HEADER_LEN + 8;
                if (b.len() - start) as u64 != clen as u64 + mlen as u64 {
                    return Err("bad PUBLISH length".into());
                }
                m.channel = b[start..start + clen].to_vec();
                m.message = b[start + clen..].to_vec();
            }
            FAILOVER_AUTH_REQUEST | FAILOVER_AUTH_ACK | MFSTART if b.len() != HEADER_LEN => {
                return Err("bad length for a header-only message".into());
            }
            _ => {}
        }
        Ok(m)
    }

    pub fn claims(&self, slot: usize) -> bool {
        self.myslots[slot / 8] & (1 << (slot & 7)) != 0
    }
    pub fn claim(&mut self, slot: usize) {
        self.myslots[slot / 8] |= 1 << (slot & 7);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_offsets_match_cluster_h() {
        let mut m = Msg {
            kind: MEET,
            port: 7000,
            current_epoch: 5,
            config_epoch: 3,
            offset: 99,
            sender: "a".repeat(40),
            myip: "127.0.0.1".into(),
            cport: 17000,
            flags: 1,
            hostname: "node-a".into(),
            ..Default::default()
        };
        m.claim(0);
        m.claim(16383);
        m.gossip.push(Gossip {
            name: "b".repeat(40),
            ip: "10.0.0.2".into(),
            port: 7001,
            cport: 17001,
            flags: 2,
            ..Default::default()
        });
        let b = m.encode();
        assert_eq!(&b[0..4], b"RCmb");
        assert_eq!(b.len(), HEADER_LEN + GOSSIP_LEN + 16);
        assert_eq!(u32_at(&b, 4) as usize, b.len());
        assert_eq!(u16_at(&b, 8), 1);
        assert_eq!(u16_at(&b, 10), 7000);
        assert_eq!(u16_at(&b, 12), MEET);
        assert_eq!(u16_at(&b, 14), 1);
        assert_eq!(u64_at(&b, 16), 5);
        assert_eq!(&b[40..41], b"a");
        assert_eq!(b[80], 1); // slot 0
        assert_eq!(b[2127], 0x80); // slot 16383
        assert_eq!(&b[2168..2177], b"127.0.0.1");
        assert_eq!(u16_at(&b, 2214), 1); // one extension
        assert_eq!(u16_at(&b, 2248), 17000);
        assert_eq!(b[2253] & FLAG0_EXT_DATA, FLAG0_EXT_DATA);
        m.mflags[0] |= FLAG0_EXT_DATA;
        assert_eq!(Msg::decode(&b).unwrap(), m);
        assert_eq!(Msg::frame_len(&b[..8]), Some(b.len()));
        let mut short = b.clone();
        short.pop();
        assert!(Msg::decode(&short).is_err());
    }

    #[test]
    fn publish_layout_is_clustermsgdatapublish() {
        let m = Msg {
            kind: PUBLISHSHARD,
            sender: "c".repeat(40),
            channel: b"ch".to_vec(),
            message: b"hello".to_vec(),
            ..Default::default()
        };
        let b = m.encode();
        // totlen = header + sizeof(clusterMsgDataPublish) - 8 + channel + message.
        assert_eq!(b.len(), HEADER_LEN + 8 + 2 + 5);
        assert_eq!(u32_at(&b, HEADER_LEN), 2);
        assert_eq!(u32_at(&b, HEADER_LEN + 4), 5);
        assert_eq!(&b[HEADER_LEN + 8..], b"chhello");
        assert_eq!(Msg::decode(&b).unwrap(), m);
        let mut bad = b.clone();
        bad[HEADER_LEN + 3] = 9; // a channel longer than the message holds
        assert!(Msg::decode(&bad).is_err());
    }
}
