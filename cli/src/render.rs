//! Renders device answers for people: the socket table as aligned columns
//! (like `netstat`), `INFO` as `key  value` lines. JSON comes from serde.

use socklab_host::client::{Info, Interface, Socket};

/// Column headers of the socket table.
pub const NETSTAT_HEADERS: [&str; 6] = ["Proto", "Local", "Remote", "State", "Recv-Q", "Send-Q"];

/// The socket table, one line per socket, columns aligned; queue sizes
/// right-aligned. Ends with a newline.
pub fn netstat_table(sockets: &[Socket]) -> String {
    let rows: Vec<(&Socket, String)> = sockets.iter().map(|s| (s, String::new())).collect();
    netstat_table_noted(&rows)
}

/// Identical listening sockets (a pool's), shown as one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// The socket (the first of the run).
    pub socket: &'a Socket,
    /// How many identical sockets it stands for (1 for most).
    pub count: usize,
}

/// The socket table with identical `LISTEN` rows (a pool's idle sockets)
/// folded into one [`Group`], where the first of them was; other rows stay
/// one each, in order.
pub fn group_listeners(sockets: &[Socket]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for socket in sockets {
        let same = groups
            .iter_mut()
            .find(|g| socket.is_listening() && g.socket == socket);
        match same {
            Some(group) => group.count += 1,
            None => groups.push(Group { socket, count: 1 }),
        }
    }
    groups
}

/// The socket table with a note after each row (empty for none), columns
/// aligned. Ends with a newline.
pub fn netstat_table_noted(sockets: &[(&Socket, String)]) -> String {
    let rows: Vec<[String; 7]> = sockets
        .iter()
        .map(|(s, note)| {
            [
                s.proto.clone(),
                s.local.to_string(),
                s.remote.to_string(),
                s.state.clone(),
                s.recv_q.to_string(),
                s.send_q.to_string(),
                note.clone(),
            ]
        })
        .collect();
    let mut widths = NETSTAT_HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let headers = [
        NETSTAT_HEADERS.map(str::to_owned).as_slice(),
        &[String::new()],
    ]
    .concat();
    let mut out = String::new();
    for row in std::iter::once(headers.as_slice()).chain(rows.iter().map(|r| r.as_slice())) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:>w4$}  {:>w5$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `INFO` as `key  value` lines, keys aligned. Ends with a newline.
/// The device's interfaces as `ip -s addr` lays them out: a numbered line per
/// interface, its link address, its IPv4 and IPv6 addresses, then its frame
/// and byte counters each way.
pub fn ifconfig_table(interfaces: &[Interface]) -> String {
    let mut out = String::new();
    for (index, i) in interfaces.iter().enumerate() {
        out += &format!("{}: {}: <UP> mtu {}\n", index + 1, i.name, i.mtu);
        out += &format!("    link/ether {}\n", i.mac);
        match &i.ipv4 {
            Some(v4) => out += &format!("    inet {v4} ({})\n", i.ipv4_source),
            None => out += &format!("    inet none ({})\n", i.ipv4_source),
        }
        out += &format!("    inet6 {}\n", i.ipv6);
        let width = [i.rx_bytes, i.tx_bytes]
            .iter()
            .map(|n| n.to_string().len())
            .max()
            .unwrap_or(1)
            .max(5);
        out += &format!(
            "    RX: {:>width$}  {:>9}  {:>7}\n",
            "bytes", "packets", "dropped"
        );
        out += &format!(
            "        {:>width$}  {:>9}  {:>7}\n",
            i.rx_bytes, i.rx_frames, i.rx_dropped
        );
        out += &format!(
            "    TX: {:>width$}  {:>9}  {:>7}\n",
            "bytes", "packets", "dropped"
        );
        out += &format!(
            "        {:>width$}  {:>9}  {:>7}\n",
            i.tx_bytes, i.tx_frames, i.tx_dropped
        );
    }
    out
}

pub fn info_table(info: &Info) -> String {
    let width = info.entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    info.entries
        .iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ifconfig_looks_like_ip_addr() {
        let rows = [
            "iface eth0 02:00:00:00:00:01 1500 192.168.69.1/24 static fdaa::1/64 10 900 0 8 700 0",
            "iface eth1 02:00:00:00:00:02 1500 none dhcp-fallback fdab::1/64 1 60 1 0 0 2",
        ];
        let interfaces: Vec<Interface> =
            rows.iter().map(|r| Interface::parse(r).unwrap()).collect();
        let table = ifconfig_table(&interfaces);
        assert!(table.starts_with("1: eth0: <UP> mtu 1500\n    link/ether 02:00:00:00:00:01\n"));
        assert!(table.contains("    inet 192.168.69.1/24 (static)\n    inet6 fdaa::1/64\n"));
        assert!(table.contains("2: eth1: <UP> mtu 1500\n"));
        assert!(table.contains("    inet none (dhcp-fallback)\n"));
        assert!(
            table.contains("          900         10        0\n"),
            "{table}"
        );
    }

    #[test]
    fn netstat_columns_align() {
        let sockets: Vec<Socket> = [
            "tcp *:6666 *:* LISTEN 0 0",
            "tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 12 0",
            "tcp [fdaa::1]:7 [fdaa::100]:40001 CLOSE-WAIT 0 1460",
        ]
        .iter()
        .map(|line| Socket::parse(line).unwrap())
        .collect();
        let table = netstat_table(&sockets);
        let expected = "\
Proto  Local              Remote                State        Recv-Q  Send-Q
tcp    *:6666             *:*                   LISTEN            0       0
tcp    192.168.69.1:6666  192.168.69.100:40000  ESTABLISHED      12       0
tcp    [fdaa::1]:7        [fdaa::100]:40001     CLOSE-WAIT        0    1460
";
        assert_eq!(table, expected);
    }

    #[test]
    fn runs_of_listeners_fold_into_one_row() {
        let sockets: Vec<Socket> = [
            "tcp *:6666 *:* LISTEN 0 0",
            "tcp *:6666 *:* LISTEN 0 0",
            "tcp *:6666 *:* LISTEN 0 0",
            "tcp 192.168.69.1:6666 192.168.69.100:40000 ESTABLISHED 0 0",
            "tcp *:6666 *:* LISTEN 0 0",
            "tcp *:7 *:* LISTEN 0 0",
        ]
        .iter()
        .map(|line| Socket::parse(line).unwrap())
        .collect();
        let counts: Vec<(u16, usize)> = group_listeners(&sockets)
            .iter()
            .map(|g| (g.socket.local.port().unwrap(), g.count))
            .collect();
        assert_eq!(counts, [(6666, 4), (6666, 1), (7, 1)]);
        let rows = [
            (&sockets[0], "x 3".to_owned()),
            (&sockets[5], String::new()),
        ];
        assert_eq!(
            netstat_table_noted(&rows),
            "Proto  Local   Remote  State   Recv-Q  Send-Q\n\
             tcp    *:6666  *:*     LISTEN       0       0  x 3\n\
             tcp    *:7     *:*     LISTEN       0       0\n"
        );
    }

    #[test]
    fn netstat_json_is_a_list_of_objects() {
        let sockets = vec![Socket::parse("tcp *:6666 *:* LISTEN 0 0").unwrap()];
        let json: serde_json::Value = serde_json::to_value(&sockets).unwrap();
        assert_eq!(json[0]["local"], "*:6666");
        assert_eq!(json[0]["remote"], "*:*");
        assert_eq!(json[0]["state"], "LISTEN");
        assert_eq!(json[0]["recv_q"], 0);
    }

    #[test]
    fn info_keys_align() {
        let info = Info {
            entries: vec![
                ("mtu".into(), "1500".into()),
                ("lab_slots".into(), "64".into()),
            ],
        };
        assert_eq!(info_table(&info), "mtu        1500\nlab_slots  64\n");
    }
}
