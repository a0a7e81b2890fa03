//! A fuzzer's bytes decoded into frames cases and lab cases, read with
//! `arbitrary::Unstructured`: past the end of the bytes every choice is its
//! first (zero, false, the first variant), so every input decodes.

use arbitrary::{Result, Unstructured};
use socklab_app::BacklogPolicy;

use super::{
    lab_sizes, lab_timeouts, End, FrameInput, FrameStep, LabAct, LabCase, LabClient, Layer,
    Mutation, Segment, Target, FUZZ_TIMEOUTS,
};
use crate::common::LINK_MTU;

/// Most frames one fuzzer input injects.
pub const MAX_FUZZ_FRAMES: usize = 16;
/// Most acts one fuzzer input makes lab clients do.
pub const MAX_FUZZ_ACTS: usize = 64;
/// Most mutations of one seed frame.
const MAX_MUTATIONS: usize = 15;

/// Decodes a fuzzer's bytes into frame steps (at most
/// [`MAX_FUZZ_FRAMES`]): per frame its kind, its fields, a wait.
pub fn frames_from_bytes(data: &[u8]) -> Vec<FrameStep> {
    let mut u = Unstructured::new(data);
    let mut steps = Vec::new();
    while !u.is_empty() && steps.len() < MAX_FUZZ_FRAMES {
        match frame_step(&mut u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    steps
}

/// Decodes a fuzzer's bytes into a lab case: the pool, the backlog policy,
/// the timeouts, one to five clients, then acts (at most
/// [`MAX_FUZZ_ACTS`]).
pub fn lab_from_bytes(data: &[u8]) -> LabCase {
    lab_case(&mut Unstructured::new(data))
        .or_else(|_| lab_case(&mut Unstructured::new(&[])))
        .expect("no bytes decode into the first choice of each")
}

/// A length of at most `max`, then that many bytes (fewer at the end).
fn bytes_up_to(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let len = u.int_in_range(0..=max)?.min(u.len());
    Ok(u.bytes(len)?.to_vec())
}

/// An index that wraps around what it indexes (a connection, a client).
fn index(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(usize::from(u.arbitrary::<u8>()?))
}

fn frame_step(u: &mut Unstructured<'_>) -> Result<FrameStep> {
    let input = match u.choose_index(6)? {
        0 => FrameInput::Raw(bytes_up_to(u, LINK_MTU + 64)?),
        1 => FrameInput::Ethernet {
            ethertype: u.arbitrary()?,
            bytes: bytes_up_to(u, LINK_MTU)?,
        },
        2 => FrameInput::Ip {
            v6: u.arbitrary()?,
            fix: u.arbitrary()?,
            protocol: u.arbitrary()?,
            payload: bytes_up_to(u, 1400)?,
        },
        3 => FrameInput::Seed {
            index: index(u)?,
            fix_lengths: u.arbitrary()?,
            fix_checksums: u.arbitrary()?,
            mutations: (0..u.int_in_range(0..=MAX_MUTATIONS)?)
                .map(|_| mutation(u))
                .collect::<Result<_>>()?,
        },
        4 => FrameInput::Send {
            conn: index(u)?,
            bytes: bytes_up_to(u, 2048)?,
        },
        _ => FrameInput::Segment(Segment {
            target: if u.arbitrary()? {
                Target::Port {
                    port: u.int_in_range(0..=63)?,
                    v6: u.arbitrary()?,
                }
            } else {
                Target::Conn(index(u)?)
            },
            seq: u.arbitrary()?,
            ack: u.arbitrary()?,
            flags: u.arbitrary()?,
            window: u.arbitrary()?,
            options: bytes_up_to(u, 40)?,
            payload: bytes_up_to(u, 1400)?,
        }),
    };
    let wait_ms = u16::from(u.arbitrary::<u8>()?) * 16;
    Ok(FrameStep { input, wait_ms })
}

fn mutation(u: &mut Unstructured<'_>) -> Result<Mutation> {
    const LAYERS: [Layer; 4] = [
        Layer::Ethernet,
        Layer::Network,
        Layer::Transport,
        Layer::Payload,
    ];
    Ok(match u.choose_index(5)? {
        0 => Mutation::Flip {
            at: usize::from(u.arbitrary::<u16>()?),
            bit: u.arbitrary()?,
        },
        1 => Mutation::Field {
            layer: *u.choose(&LAYERS)?,
            offset: usize::from(u.arbitrary::<u8>()?),
            width: u.arbitrary()?,
            value: u.arbitrary()?,
        },
        2 => Mutation::Insert {
            at: usize::from(u.arbitrary::<u16>()?),
            bytes: bytes_up_to(u, 256)?,
        },
        3 => Mutation::Delete {
            at: usize::from(u.arbitrary::<u16>()?),
            len: usize::from(u.arbitrary::<u16>()?),
        },
        _ => Mutation::Truncate {
            len: usize::from(u.arbitrary::<u16>()?),
        },
    })
}

fn lab_case(u: &mut Unstructured<'_>) -> Result<LabCase> {
    const POLICIES: [BacklogPolicy; 3] = [
        BacklogPolicy::Wait,
        BacklogPolicy::Refuse,
        BacklogPolicy::Busy,
    ];
    let sizes = lab_sizes(
        u.int_in_range(0..=3)?,
        u.int_in_range(0..=3)?,
        u.int_in_range(0..=3)?,
        u.int_in_range(0..=3)?,
    );
    let policy = *u.choose(&POLICIES)?;
    let timeouts = if u.arbitrary()? {
        lab_timeouts([index(u)?, index(u)?, index(u)?])
    } else {
        FUZZ_TIMEOUTS
    };
    let clients = (0..u.int_in_range(1..=5)?)
        .map(|_| lab_client(u))
        .collect::<Result<_>>()?;
    let mut acts = Vec::new();
    while !u.is_empty() && acts.len() < MAX_FUZZ_ACTS {
        match lab_act(u) {
            Ok(act) => acts.push(act),
            Err(_) => break,
        }
    }
    Ok(LabCase {
        sizes,
        policy,
        timeouts,
        clients,
        acts,
    })
}

fn lab_client(u: &mut Unstructured<'_>) -> Result<LabClient> {
    const ENDS: [End; 4] = [End::Linger, End::Close, End::Abort, End::Vanish];
    Ok(LabClient {
        v6: u.arbitrary()?,
        nagle: u.arbitrary()?,
        // Reading unless the input says otherwise.
        reading: !u.arbitrary::<bool>()?,
        end: *u.choose(&ENDS)?,
        rx_buffer: 64 << u.int_in_range(0..=7)?,
    })
}

fn lab_act(u: &mut Unstructured<'_>) -> Result<LabAct> {
    Ok(match u.choose_index(9)? {
        0..=2 => LabAct::Send {
            client: index(u)?,
            bytes: bytes_up_to(u, 2048)?,
        },
        3 => LabAct::Wait {
            ms: u16::from(u.arbitrary::<u8>()?) * 16,
        },
        4 => LabAct::Reading {
            client: index(u)?,
            on: u.arbitrary()?,
        },
        5 => LabAct::Close { client: index(u)? },
        6 => LabAct::Abort { client: index(u)? },
        7 => LabAct::Vanish { client: index(u)? },
        _ => LabAct::HalfOpen { v6: u.arbitrary()? },
    })
}
