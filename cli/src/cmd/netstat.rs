//! `socklab netstat ADDR [--all] [--json]`: the device's socket table, the
//! lab pool's idle listeners on one row with how many are free slots and
//! how many backlog places, and this query's own connection marked.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::render::{group_listeners, netstat_table_noted, Group};
use socklab_app::protocol::{info, LAB_PORT};
use socklab_host::client::{Greeting, Info, Socket};

use super::Global;

/// Arguments of `socklab netstat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    /// Print every socket on a row of its own (identical listening sockets
    /// are folded into one row without it).
    #[arg(long)]
    pub all: bool,

    /// Print JSON (every socket) instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab netstat`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut client = global.query_client(args.addr)?;
    let sockets = client.netstat()?;
    let facts = if args.json {
        None
    } else {
        Some(client.info()?)
    };
    let me = client.greeting().clone();
    let _ = client.quit();
    match facts {
        None => println!("{}", serde_json::to_string_pretty(&sockets)?),
        Some(facts) => print!("{}", table(&sockets, &facts, &me, args.all)),
    }
    super::ok()
}

/// The lab pool's numbers, from `INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LabPool {
    slots: usize,
    in_use: usize,
    backlog: usize,
    queued: usize,
}

impl LabPool {
    fn from_info(facts: &Info) -> Option<Self> {
        Some(LabPool {
            slots: facts.parse(info::LAB_SLOTS)?,
            in_use: facts.parse(info::LAB_IN_USE)?,
            backlog: facts.parse(info::LAB_BACKLOG)?,
            queued: facts.parse(info::LAB_QUEUED)?,
        })
    }

    fn free_slots(&self) -> usize {
        self.slots.saturating_sub(self.in_use)
    }

    fn free_backlog(&self) -> usize {
        self.backlog.saturating_sub(self.queued)
    }
}

/// The table (grouped unless `all`) and the lab pool's summary line.
fn table(sockets: &[Socket], facts: &Info, me: &Greeting, all: bool) -> String {
    let pool = LabPool::from_info(facts);
    let is_me = |s: &Socket| {
        s.local.port() == Some(me.local.port()) && s.remote.to_string() == me.peer.to_string()
    };
    let note = |group: &Group<'_>| {
        if is_me(group.socket) {
            match me.management {
                true => format!("<- this query (management socket {})", me.slot),
                false => format!("<- this query (slot {})", me.slot),
            }
        } else if group.count > 1 && group.socket.is_listening_on(LAB_PORT) {
            match pool {
                Some(pool) => format!(
                    "x {}: {} free slots, {} free backlog places",
                    group.count,
                    pool.free_slots(),
                    pool.free_backlog()
                ),
                None => format!("x {}", group.count),
            }
        } else if group.count > 1 {
            format!("x {}", group.count)
        } else {
            String::new()
        }
    };
    let groups: Vec<Group<'_>> = if all {
        sockets
            .iter()
            .map(|socket| Group { socket, count: 1 })
            .collect()
    } else {
        group_listeners(sockets)
    };
    let rows: Vec<(&Socket, String)> = groups.iter().map(|g| (g.socket, note(g))).collect();
    let mut out = netstat_table_noted(&rows);
    if let Some(pool) = pool {
        out.push_str(&format!(
            "\nlab (port {LAB_PORT}): {} slots, {} in use{}, {} free; \
             backlog {} places, {} waiting, {} free\n",
            pool.slots,
            pool.in_use,
            match me.management {
                true => "",
                false => " (this query's included)",
            },
            pool.free_slots(),
            pool.backlog,
            pool.queued,
            pool.free_backlog()
        ));
    }
    if !all && groups.len() < sockets.len() {
        out.push_str("(identical listening sockets share a row: --all shows each)\n");
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn pool_listeners_fold_and_the_query_is_marked() {
        let mut lines = vec!["tcp *:6666 *:* LISTEN 0 0"; 4];
        lines.push("tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 0 0");
        lines.push("tcp *:7 *:* LISTEN 0 0");
        let sockets: Vec<Socket> = lines.iter().map(|l| Socket::parse(l).unwrap()).collect();
        let facts = Info {
            entries: [
                ("lab_slots", "3"),
                ("lab_in_use", "1"),
                ("lab_backlog", "2"),
                ("lab_queued", "0"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        };
        let me = Greeting::parse(
            "HELLO socklab/0.1.0 slot=2 peer=192.168.69.100:40000 local=192.168.69.1:6666",
        )
        .unwrap();
        let grouped = table(&sockets, &facts, &me, false);
        assert!(
            grouped.contains(
                "LISTEN            0       0  x 4: 2 free slots, 2 free backlog places\n"
            ),
            "{grouped}"
        );
        assert!(
            grouped.contains("ESTABLISHED       0       0  <- this query (slot 2)\n"),
            "{grouped}"
        );
        assert!(grouped.contains("3 slots, 1 in use (this query's included), 2 free; backlog 2 places, 0 waiting, 2 free"), "{grouped}");
        assert_eq!(grouped.matches("*:6666").count(), 1, "{grouped}");
        let every = table(&sockets, &facts, &me, true);
        assert_eq!(every.matches("*:6666").count(), 4, "{every}");
        assert!(!every.contains("--all"), "{every}");
    }
}
