//! Third-party tools against the linux-tap board: tshark, nmap, hping3,
//! ping, a Java course client and Python asyncio, each run in the device's
//! private namespace against `socklab-tap` on its TAP. Needs root and the
//! tools scripts/setup installs.

use socklab_tests::{thirdparty_cases, BoardKind};

thirdparty_cases!(BoardKind::Tap;
    tshark::device_frames_are_well_formed_with_valid_checksums,
    closes::every_clean_close_ends_with_fin_ack_both_ways,
    nmap::tcp_scans_find_exactly_the_listening_ports,
    nmap::udp_scan_finds_the_udp_services,
    hping::segments_get_the_rfc_answers,
    hping::syn_flood_from_random_sources_leaves_the_device_serving,
    ping::v4_v6_and_full_mtu_with_df_are_answered,
    ping::fragmented_pings_are_reassembled_and_answered,
    ping::flood_of_twenty_thousand_loses_at_most_one_percent,
    java::course_client_session,
    asyncio::two_hundred_clients_fill_pool_and_backlog,
);

// A client of our own on the TAP that stops answering at will (linux-tap
// only: once on a real link, next to the in-process versions).
thirdparty_cases!(BoardKind::Tap;
    timers::reused_slot_retransmits_on_a_fresh_timer,
    timers::dead_peer_timeout_frees_the_slot_on_time,
);
