//! Python asyncio against the pool and the backlog
//! (`tests/python/crowd.py`): 200 clients at once, exactly the pool greeted,
//! the backlog waiting and served in WHO's order as others leave, the rest
//! refused, and afterwards every slot free.

use std::time::Duration;

use socklab_app::protocol::{info, LAB_PORT};

use super::{alone, in_netns, info_value, run, suite_file};
use crate::{BoardKind, Dut};

/// Clients the script opens at once.
pub const CLIENTS: u32 = 200;
/// The script, in the suite.
pub const SCRIPT: &str = "python/crowd.py";

/// 200 asyncio clients against the lab port.
pub fn two_hundred_clients_fill_pool_and_backlog(board: BoardKind) {
    let _alone = alone();
    let dut = Dut::start(board);
    let (slots, backlog) = {
        let mut c = dut.lab_client().expect("HELLO");
        let sizes = (
            info_value(&mut c, info::LAB_SLOTS),
            info_value(&mut c, info::LAB_BACKLOG),
        );
        c.quit().unwrap();
        sizes
    };
    assert!(
        u64::from(CLIENTS) > slots + backlog,
        "{CLIENTS} clients do not overflow {slots} slots + {backlog} backlog"
    );
    // The observer's QUIT must have freed its slot before the crowd comes.
    let mut command = in_netns(&dut, "python3");
    command
        .arg(suite_file(SCRIPT))
        .arg(dut.addr(0).ip().to_string())
        .arg(LAB_PORT.to_string())
        .arg(CLIENTS.to_string())
        .arg(slots.to_string())
        .arg(backlog.to_string());
    let output = run(command, Duration::from_secs(180));
    output.assert_success();
    let summary = output.stdout.trim();
    let expected_refused = u64::from(CLIENTS) - slots - backlog;
    assert!(
        summary.contains(&format!("\"refused\": {expected_refused}")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("\"served_in_order\": {backlog}")),
        "{summary}"
    );
    println!(
        "figures: Python asyncio, {CLIENTS} clients at once on {}: {summary}",
        dut.board_name()
    );
    dut.assert_running();
}
