//! Third-party tools against the riscv-virt board: the firmware image in QEMU with its
//! virtio-net on a TAP in a private namespace, driven by tshark (on QEMU's `filter-dump`
//! capture, `vnet_hdr` off), nmap, hping3, ping, a Java course client and Python asyncio
//! from inside that namespace. Needs root.

use socklab_tests::{thirdparty_cases, BoardKind};

thirdparty_cases!(BoardKind::RISCV_TAP;
    tshark::device_frames_are_well_formed_with_valid_checksums,
    closes::every_clean_close_ends_with_fin_ack_both_ways,
    nmap::tcp_scans_find_exactly_the_listening_ports,
    hping::segments_get_the_rfc_answers,
    hping::syn_flood_from_random_sources_leaves_the_device_serving,
    ping::v4_v6_and_full_mtu_with_df_are_answered,
    ping::fragmented_pings_are_reassembled_and_answered,
    ping::flood_of_twenty_thousand_loses_at_most_one_percent,
    java::course_client_session,
    asyncio::two_hundred_clients_fill_pool_and_backlog,
);
