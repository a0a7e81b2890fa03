//! The device's JSON API (`GET /api/info`, `/api/sockets`, `/api/events` on
//! port 80) as typed documents, the client that fetches them, and what a
//! viewer makes of them: sockets grouped as the page groups them, and the
//! state changes of each connection as a ladder.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{Connection, HttpError};
use crate::netns::HostNet;

/// `/api/info`: every `INFO` key (the names are `socklab_app::protocol::info`'s),
/// numbers as numbers, anything else as text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Info(pub BTreeMap<String, serde_json::Value>);

impl Info {
    /// The value of `key` as text (a number printed).
    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The value of `key` as a number.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.0.get(key)?.as_u64()
    }
}

/// What a TCP socket is for on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A lab slot (`slot` is its number).
    Slot,
    /// A lab backlog socket (`slot` is its index; `position` its place in the queue, 1 first).
    Backlog,
    /// One of the HTTP server's own sockets.
    Http,
    /// Any other service socket (echo, discard, chargen, iperf, the closing pool).
    Service,
    /// A role this tool does not know (a newer device).
    #[serde(other)]
    Other,
}

/// One TCP socket of `/api/sockets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSocket {
    /// Its index in the device's socket set (the `socket` of its events).
    pub id: usize,
    /// The service's name (`lab`, `echo`, `http`, ...; `tcp` for others).
    pub service: String,
    /// The local port.
    pub port: u16,
    /// What it is for.
    pub role: Role,
    /// TCP state, as the RFC names it (`LISTEN`, `ESTABLISHED`, `TIME-WAIT`, ...).
    pub state: String,
    /// Milliseconds in this state.
    pub state_ms: u64,
    /// Bytes waiting in the input buffer.
    pub rx_queued: usize,
    /// Size of the input buffer.
    pub rx_capacity: usize,
    /// Bytes waiting in the output buffer.
    pub tx_queued: usize,
    /// Size of the output buffer.
    pub tx_capacity: usize,
    /// Lab slot, backlog index or HTTP socket number.
    #[serde(default)]
    pub slot: Option<usize>,
    /// Place in the backlog queue (1 is served next).
    #[serde(default)]
    pub position: Option<usize>,
    /// The device's end, once connected.
    #[serde(default)]
    pub local: Option<SocketAddr>,
    /// The client's end, once connected.
    #[serde(default)]
    pub remote: Option<SocketAddr>,
}

/// The TCP states of a connection on its way out (grouped apart, with TIME-WAIT).
pub const CLOSING_STATES: [&str; 6] = [
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
];

impl ApiSocket {
    /// A name for people: `lab slot 3`, `lab backlog 1`, `http 0`, `echo #80`.
    pub fn name(&self) -> String {
        match (self.role, self.slot) {
            (Role::Slot, Some(n)) => format!("lab slot {n}"),
            (Role::Backlog, Some(n)) => format!("lab backlog {n}"),
            (Role::Http, Some(n)) => format!("http {n}"),
            _ => format!("{} #{}", self.service, self.id),
        }
    }

    /// True while it listens.
    pub fn is_listening(&self) -> bool {
        self.state == "LISTEN"
    }

    /// True in a state of the close (FIN-WAIT, LAST-ACK, TIME-WAIT, ...).
    pub fn is_closing(&self) -> bool {
        CLOSING_STATES.contains(&self.state.as_str())
    }
}

/// `/api/sockets`: every TCP socket, then the counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketsDoc {
    /// Milliseconds since the device started.
    pub uptime_ms: u64,
    /// Every TCP socket, in the device's order.
    pub sockets: Vec<ApiSocket>,
    /// Lab clients served.
    pub lab_in_use: u64,
    /// Lab clients waiting in the backlog.
    pub lab_queued: u64,
    /// The counters, by their `INFO` names (`frames_rx`, `conn_accepted`, ...).
    pub counters: BTreeMap<String, u64>,
    /// The bad link's counts, by their `INFO` names (`badlink_rx_dropped`,
    /// ...): every one 0 on a device that runs without a bad link.
    #[serde(default)]
    pub badlink: BTreeMap<String, u64>,
}

/// The sockets listening on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The service's name.
    pub service: String,
    /// The port.
    pub port: u16,
    /// Sockets listening.
    pub listening: usize,
    /// Sockets of this port serving a client (backlog excepted).
    pub connected: usize,
}

/// The sockets as the page shows them.
#[derive(Debug, Clone, Default)]
pub struct Groups<'d> {
    /// Per port, how many listen and how many serve, in service order.
    pub listeners: Vec<Listener>,
    /// Connections being served (handshakes included), by service then slot.
    pub connected: Vec<&'d ApiSocket>,
    /// The lab's backlog queue, first served first.
    pub backlog: Vec<&'d ApiSocket>,
    /// Connections on their way out (FIN-WAIT, LAST-ACK, TIME-WAIT, ...).
    pub closing: Vec<&'d ApiSocket>,
}

/// Services in the order they are shown.
const SERVICE_ORDER: [&str; 6] = ["lab", "echo", "discard", "chargen", "http", "tcp"];

fn service_rank(service: &str) -> usize {
    SERVICE_ORDER
        .iter()
        .position(|s| *s == service)
        .unwrap_or(SERVICE_ORDER.len())
}

impl SocketsDoc {
    /// Groups the sockets: listeners per port, connected, backlog, closing.
    /// CLOSED sockets (spare, not listening) are left out.
    pub fn groups(&self) -> Groups<'_> {
        let mut groups = Groups::default();
        let mut by_port: Vec<Listener> = Vec::new();
        for s in &self.sockets {
            if s.state == "CLOSED" {
                continue;
            }
            let index = match by_port.iter().position(|l| l.port == s.port) {
                Some(i) => i,
                None => {
                    by_port.push(Listener {
                        service: s.service.clone(),
                        port: s.port,
                        listening: 0,
                        connected: 0,
                    });
                    by_port.len() - 1
                }
            };
            let listener = &mut by_port[index];
            if s.is_listening() {
                listener.listening += 1;
                continue;
            }
            if s.role != Role::Backlog {
                listener.connected += 1;
            }
            if s.position.is_some() {
                groups.backlog.push(s);
            } else if s.is_closing() {
                groups.closing.push(s);
            } else {
                groups.connected.push(s);
            }
        }
        by_port.sort_by_key(|l| (service_rank(&l.service), l.port));
        groups.listeners = by_port;
        let order = |s: &&ApiSocket| (service_rank(&s.service), s.slot.unwrap_or(s.id), s.id);
        groups.connected.sort_by_key(order);
        groups.closing.sort_by_key(order);
        groups.backlog.sort_by_key(|s| s.position);
        groups
    }
}

/// One connection state change of `/api/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its sequence number (the ring's, from 0 at start).
    pub seq: u64,
    /// When, in milliseconds since start.
    pub t_ms: u64,
    /// The socket's index (an `ApiSocket::id`).
    pub socket: usize,
    /// The socket's local port.
    pub port: u16,
    /// The service's name.
    pub service: String,
    /// The state it left.
    pub from: String,
    /// The state it entered.
    pub to: String,
    /// The peer, when it had one.
    #[serde(default)]
    pub remote: Option<SocketAddr>,
}

/// `/api/events?since=N`: the kept events from `N` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsDoc {
    /// Milliseconds since the device started.
    pub uptime_ms: u64,
    /// The sequence number the next event will have: ask `since` it next time.
    pub next: u64,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// One step of a connection's ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The state.
    pub state: String,
    /// When it was entered (ms since start); `None` for the state the first
    /// event left.
    pub t_ms: Option<u64>,
}

/// The steps of one socket from the SYN that opened its connection to its
/// return to LISTEN or CLOSED (or now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// The socket's index.
    pub socket: usize,
    /// The service's name.
    pub service: String,
    /// The peer, once known.
    pub remote: Option<SocketAddr>,
    /// The states in order.
    pub steps: Vec<Step>,
}

/// The recent events, kept across refreshes (the device keeps a ring: a
/// viewer that asks `since` its last `next` sees every change once).
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: VecDeque<Event>,
    next: u64,
}

impl EventLog {
    /// Events kept for the ladders.
    pub const KEEP: usize = 400;

    /// The `since` to ask for next.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Adds a fetched document; a `next` that went back means the device
    /// restarted, and the old history is dropped.
    pub fn add(&mut self, doc: EventsDoc) {
        if doc.next < self.next {
            self.events.clear();
        }
        for event in doc.events {
            if self.events.back().is_some_and(|e| e.seq >= event.seq) {
                continue;
            }
            self.events.push_back(event);
        }
        while self.events.len() > Self::KEEP {
            self.events.pop_front();
        }
        self.next = doc.next;
    }

    /// The kept events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// One ladder per connection, oldest first.
    pub fn ladders(&self) -> Vec<Ladder> {
        let mut ladders: Vec<Ladder> = Vec::new();
        let mut open: HashMap<usize, usize> = HashMap::new();
        for e in &self.events {
            let index = match open.get(&e.socket) {
                Some(&i) if e.from != "LISTEN" && e.from != "CLOSED" => i,
                _ => {
                    ladders.push(Ladder {
                        socket: e.socket,
                        service: e.service.clone(),
                        remote: e.remote,
                        steps: vec![Step {
                            state: e.from.clone(),
                            t_ms: None,
                        }],
                    });
                    open.insert(e.socket, ladders.len() - 1);
                    ladders.len() - 1
                }
            };
            let ladder = &mut ladders[index];
            if ladder.remote.is_none() {
                ladder.remote = e.remote;
            }
            ladder.steps.push(Step {
                state: e.to.clone(),
                t_ms: Some(e.t_ms),
            });
            if e.to == "LISTEN" || e.to == "CLOSED" {
                open.remove(&e.socket);
            }
        }
        ladders
    }
}

/// Why the API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No connection to the device's port 80.
    #[error(
        "cannot reach the device's web server at {addr} from {net}: {error}; is a device \
         running there? (`socklab run tap` prints its address and forwards it to \
         127.0.0.1:10080; give --netns NS for a device in a network namespace)"
    )]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// From where.
        net: String,
        /// What connect said.
        error: std::io::Error,
    },
    /// The request failed or the answer broke HTTP.
    #[error("GET {path} from {addr}: {error}; is this a socklab device's web server (port 80)?")]
    Http {
        /// Where.
        addr: SocketAddr,
        /// The request's path.
        path: String,
        /// What went wrong.
        error: HttpError,
    },
    /// An answer other than 200.
    #[error("GET {path} from {addr}: the server answered {status} {reason}; is this a socklab device's port 80?")]
    Status {
        /// Where.
        addr: SocketAddr,
        /// The request's path.
        path: String,
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// A 200 whose body is not the document expected.
    #[error(
        "GET {path} from {addr}: not the socklab JSON API ({error}); is this a socklab device?"
    )]
    Json {
        /// Where.
        addr: SocketAddr,
        /// The request's path.
        path: String,
        /// What serde said.
        error: serde_json::Error,
    },
}

/// Bytes and time one refresh cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Requests made.
    pub requests: usize,
    /// Body bytes read.
    pub bytes: usize,
}

/// Reads the API of one device over a kept-alive connection, opened again
/// when the device closed it (its HTTP idle timeout) or it broke.
#[derive(Debug)]
pub struct ApiClient {
    net: HostNet,
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<Connection>,
    cost: Cost,
}

impl ApiClient {
    /// A client of the device at `addr` (its port 80, or a forwarder's),
    /// reached from `net`; each connect and read waits at most `timeout`.
    pub fn new(net: HostNet, addr: SocketAddr, timeout: Duration) -> Self {
        ApiClient {
            net,
            addr,
            timeout,
            conn: None,
            cost: Cost::default(),
        }
    }

    /// The device's address as given.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests and bytes since the last call.
    pub fn take_cost(&mut self) -> Cost {
        std::mem::take(&mut self.cost)
    }

    /// `GET /api/info`.
    pub fn info(&mut self) -> Result<Info, ApiError> {
        self.get("/api/info")
    }

    /// `GET /api/sockets`.
    pub fn sockets(&mut self) -> Result<SocketsDoc, ApiError> {
        self.get("/api/sockets")
    }

    /// `GET /api/events?since=N`.
    pub fn events(&mut self, since: u64) -> Result<EventsDoc, ApiError> {
        self.get(&format!("/api/events?since={since}"))
    }

    /// GETs `path` and parses the JSON body as `T`.
    pub fn get<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<T, ApiError> {
        let reused = self.conn.is_some();
        let response = match self.fetch(path) {
            // A kept connection the device closed meanwhile (its idle
            // timeout): once more, on a new one.
            Err(ApiError::Http { .. }) if reused => self.fetch(path),
            other => other,
        }?;
        if response.status != 200 {
            return Err(ApiError::Status {
                addr: self.addr,
                path: path.to_owned(),
                status: response.status,
                reason: response.reason,
            });
        }
        self.cost.requests += 1;
        self.cost.bytes += response.body.len();
        serde_json::from_slice(&response.body).map_err(|error| ApiError::Json {
            addr: self.addr,
            path: path.to_owned(),
            error,
        })
    }

    /// One request on the kept connection, or a new one; a connection that
    /// failed or will close is dropped.
    fn fetch(&mut self, path: &str) -> Result<crate::http::Response, ApiError> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => Connection::open(&self.net, self.addr, self.timeout).map_err(|error| {
                ApiError::Connect {
                    addr: self.addr,
                    net: self.net.to_string(),
                    error,
                }
            })?,
        };
        let response = conn.get(path).map_err(|error| ApiError::Http {
            addr: self.addr,
            path: path.to_owned(),
            error,
        })?;
        if conn.reusable() {
            self.conn = Some(conn);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use socklab_app::protocol::info;

    // Documents a real linux-tap device served (`curl` on its port 80, with
    // three lab clients over IPv4, one over IPv6 and an echo client
    // connected, after one that said QUIT).
    const INFO: &str = include_str!("../testdata/api/info.json");
    const SOCKETS: &str = include_str!("../testdata/api/sockets.json");
    const EVENTS: &str = include_str!("../testdata/api/events.json");

    #[test]
    fn info_reads_every_key() {
        let info: Info = serde_json::from_str(INFO).unwrap();
        assert_eq!(info.text(info::BOARD).as_deref(), Some("linux-tap"));
        assert_eq!(info.text(info::IPV4).as_deref(), Some("192.168.69.1/24"));
        assert_eq!(info.number(info::MTU), Some(1500));
        assert_eq!(info.text(info::MTU).as_deref(), Some("1500"));
        assert_eq!(info.number(info::HTTP_SOCKETS), Some(4));
        assert_eq!(info.number(info::LAB_SLOTS), Some(64));
        assert_eq!(info.number("no such key"), None);
    }

    #[test]
    fn sockets_parse_and_group_like_the_page() {
        let doc: SocketsDoc = serde_json::from_str(SOCKETS).unwrap();
        assert_eq!(doc.sockets.len(), 146);
        assert_eq!(doc.lab_in_use, 4);
        assert_eq!(doc.counters["conn_accepted"], 7);
        let groups = doc.groups();
        let connected: Vec<String> = groups.connected.iter().map(|s| s.name()).collect();
        assert_eq!(
            connected,
            [
                "lab slot 1",
                "lab slot 2",
                "lab slot 3",
                "lab slot 4",
                "echo #80",
                "http 0"
            ]
        );
        let slot4 = groups.connected[3];
        assert_eq!(slot4.local, Some("[fdaa::1]:6666".parse().unwrap()));
        assert_eq!(slot4.remote, Some("[fdaa::100]:53330".parse().unwrap()));
        assert_eq!(slot4.rx_capacity, 1024);
        assert_eq!(slot4.tx_capacity, 4096);
        assert!(groups.backlog.is_empty());
        assert!(groups.closing.is_empty());
        let lab = &groups.listeners[0];
        assert_eq!((lab.service.as_str(), lab.port), ("lab", 6666));
        assert_eq!((lab.listening, lab.connected), (60 + 16, 4));
        let ports: Vec<u16> = groups.listeners.iter().map(|l| l.port).collect();
        assert_eq!(ports, [6666, 7, 9, 19, 80, 5001, 5201]);
    }

    #[test]
    fn backlog_and_closing_sockets_go_apart() {
        let mut doc: SocketsDoc = serde_json::from_str(SOCKETS).unwrap();
        let first = doc.sockets[1].clone();
        doc.sockets.push(ApiSocket {
            role: Role::Backlog,
            slot: Some(3),
            position: Some(2),
            state: "ESTABLISHED".into(),
            ..first.clone()
        });
        doc.sockets.push(ApiSocket {
            position: Some(1),
            ..doc.sockets.last().unwrap().clone()
        });
        doc.sockets.push(ApiSocket {
            role: Role::Service,
            state: "TIME-WAIT".into(),
            ..first
        });
        let groups = doc.groups();
        let places: Vec<_> = groups.backlog.iter().map(|s| s.position).collect();
        assert_eq!(places, [Some(1), Some(2)]);
        assert_eq!(groups.closing.len(), 1);
        assert_eq!(groups.closing[0].state, "TIME-WAIT");
    }

    #[test]
    fn unknown_roles_and_missing_options_are_taken() {
        let s: ApiSocket = serde_json::from_str(
            r#"{"id":9,"service":"tcp","port":1,"role":"future","state":"LISTEN","state_ms":1,
                "rx_queued":0,"rx_capacity":1,"tx_queued":0,"tx_capacity":1}"#,
        )
        .unwrap();
        assert_eq!(s.role, Role::Other);
        assert_eq!((s.slot, s.local), (None, None));
        assert_eq!(s.name(), "tcp #9");
    }

    #[test]
    fn events_make_one_ladder_per_connection() {
        let doc: EventsDoc = serde_json::from_str(EVENTS).unwrap();
        assert_eq!(doc.next, 21);
        let mut log = EventLog::default();
        log.add(doc.clone());
        assert_eq!(log.next(), 21);
        // The same events again (an overlapping `since`) are not doubled.
        log.add(doc.clone());
        assert_eq!(log.events().count(), 21);
        let ladders = log.ladders();
        let quit = ladders
            .iter()
            .find(|l| l.remote == Some("192.168.69.100:47020".parse().unwrap()))
            .unwrap();
        let states: Vec<&str> = quit.steps.iter().map(|s| s.state.as_str()).collect();
        assert_eq!(
            states,
            [
                "LISTEN",
                "SYN-RECEIVED",
                "ESTABLISHED",
                "FIN-WAIT-1",
                "FIN-WAIT-2",
                "CLOSED"
            ]
        );
        assert_eq!(quit.steps[0].t_ms, None);
        assert!(quit.steps[1].t_ms.is_some());
        // A device that restarted (next went back) starts a new history.
        log.add(EventsDoc {
            next: 1,
            events: doc.events[..1].to_vec(),
            ..doc
        });
        assert_eq!(log.events().count(), 1);
    }
}
