//! The check after every fuzzing case: the pool is whole again and every
//! connection's end was counted once.

use socklab_app::protocol::{self, NetstatRow, SockName};

use crate::common::Net;

// -- the check -------------------------------------------------------

impl Net {
    /// Asserts that the pool is whole: nobody served or waiting, a new
    /// client gets its `HELLO` and an `ECHO` answered, `NETSTAT` shows
    /// every other socket listening (the backlog's closed under the
    /// `refuse` policy) and `WHO` only the new client. Call it once every
    /// client is gone and the timeouts have passed.
    pub fn assert_pool_whole(&mut self) {
        assert_eq!(self.app.lab_in_use(), 0, "lab clients still served");
        assert_eq!(self.app.lab_queued(), 0, "lab clients still waiting");
        let (mut conn, slot) = self.lab(false);
        assert_eq!(self.ask(&mut conn, "ECHO whole"), "whole");

        let sizes = self.app.sizes();
        let refuse = self
            .info(&mut conn)
            .iter()
            .any(|(k, v)| k == protocol::info::BACKLOG_POLICY && v == "refuse");
        let lines = self.netstat(&mut conn);
        // The services' sockets (TCP, then the UDP ones), then the
        // closing pool's busy ones (free ones are not shown): only closes
        // still finishing.
        let served = sizes.service_sockets();
        assert!(
            (served..=served + sizes.closing_sockets()).contains(&lines.len()),
            "{lines:#?}"
        );
        let rows: Vec<NetstatRow<'_>> = lines
            .iter()
            .map(|l| NetstatRow::parse(l).expect("netstat() checked the rows"))
            .collect();
        let (rows, closing) = rows.split_at(served);
        assert!(
            rows[served - sizes.udp_sockets()..]
                .iter()
                .all(|r| r.proto == protocol::UDP && r.state == protocol::NO_STATE),
            "{lines:#?}"
        );
        for row in closing {
            assert!(
                matches!(row.state, "TIME-WAIT" | "LAST-ACK" | "FIN-WAIT-2"),
                "{lines:#?}"
            );
        }
        let (lab, bulk) = rows.split_at(sizes.lab.sockets());
        let ours = |r: &&NetstatRow<'_>| {
            r.state == "ESTABLISHED"
                && r.local == SockName::Addr(conn.remote)
                && r.remote == SockName::Addr(conn.local)
        };
        let listening = |r: &&NetstatRow<'_>, port: u16| {
            r.state == "LISTEN" && r.local == SockName::Any(Some(port))
        };
        let closed = if refuse { sizes.lab.backlog } else { 0 };
        assert_eq!(lab.iter().filter(ours).count(), 1, "{lines:#?}");
        assert_eq!(
            lab.iter()
                .filter(|r| listening(r, protocol::LAB_PORT))
                .count(),
            sizes.lab.sockets() - 1 - closed,
            "lab sockets not listening again: {lines:#?}"
        );
        assert_eq!(
            lab.iter().filter(|r| r.state == "CLOSED").count(),
            closed,
            "{lines:#?}"
        );
        // The bulk services built (echo alone without `discard-chargen`).
        let bulk_ports = [
            protocol::ECHO_PORT,
            #[cfg(feature = "discard-chargen")]
            protocol::DISCARD_PORT,
            #[cfg(feature = "discard-chargen")]
            protocol::CHARGEN_PORT,
        ];
        for port in bulk_ports {
            assert_eq!(
                bulk.iter().filter(|r| listening(r, port)).count(),
                sizes.bulk.slots,
                "port {port} sockets not listening again: {lines:#?}"
            );
        }

        let who = self.ask_multi(&mut conn, "WHO");
        assert_eq!(who, vec![format!("{slot} {}", conn.local)]);
        assert_eq!(self.ask(&mut conn, "QUIT"), protocol::BYE);
    }

    /// Asserts that every connection accepted so far has its end
    /// counted (closed, reset or timed out). The bound is loose:
    /// `conn_timed_out` also counts handshakes that never completed.
    /// Call it once every client is gone.
    pub fn assert_no_end_uncounted(&self) {
        let c = self.app.counters();
        assert!(
            c.closed + c.reset + c.timed_out >= c.accepted,
            "accepted connections whose end was not counted: {c:?}"
        );
    }

    /// Asserts that no more connections were counted closed or reset
    /// than were accepted.
    pub fn assert_no_end_counted_twice(&self) {
        let c = self.app.counters();
        assert!(
            c.closed + c.reset <= c.accepted,
            "more connections ended than accepted: {c:?}"
        );
    }
}
