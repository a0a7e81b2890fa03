//! The boot record: why the device booted and how often, kept across resets in a few
//! words of RAM that neither the runtime nor QEMU's loader clears (the board's `NOINIT`
//! region in `memory.x`, outside every loaded section).
//!
//! Power-on RAM holds no valid record: that boot is `power-on`, count 1. Before a
//! reset it causes, the board notes the cause ([`note`]: the watchdog, a fault); a reset
//! with a valid record and no cause noted was asked for by software. Each boot counts
//! one more and clears the cause.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use socklab_app::BootReason;

/// Marks a valid record ("SKLB").
const MAGIC: u32 = 0x534b_4c42;
/// No cause noted.
const CAUSE_NONE: u32 = 0;
/// The watchdog fired.
const CAUSE_WATCHDOG: u32 = 0x5744_4f47;
/// A fault or panic was reported.
const CAUSE_FAULT: u32 = 0x4641_4c54;

/// The record's layout in the board's `NOINIT` region.
#[repr(C)]
struct BootRecord {
    magic: u32,
    count: u32,
    /// `!count`: a record whose words do not agree is not valid.
    check: u32,
    cause: u32,
}

extern "C" {
    /// The start of the board's `NOINIT` region (its `memory.x` defines the symbol).
    static mut _boot_record: BootRecord;
}

/// The record: the start of the board's `NOINIT` region.
fn record() -> *mut BootRecord {
    // Only the symbol's address is taken; every access goes through `read_volatile` and
    // `write_volatile` below.
    &raw mut _boot_record
}

/// Reads the record left by the previous boot and updates it for this one: this boot's
/// reason and its count (1 on power-on). Called once, at boot.
pub fn boot() -> (BootReason, u32) {
    // SAFETY: `memory.x` puts `_boot_record` at the start of `NOINIT`, RAM outside every
    // section that only this module uses; any bits there are valid `u32`s.
    unsafe { boot_at(record()) }
}

/// Notes `reason` as the cause of the reset about to happen (the watchdog's, a
/// fault's); the next boot reports it. Other reasons clear the cause.
pub fn note(reason: BootReason) {
    // SAFETY: as in `boot`.
    unsafe { note_at(record(), reason) }
}

/// [`boot`] on the record at `record`.
///
/// # Safety
/// `record` points to RAM of at least `size_of::<BootRecord>()` bytes, 4-aligned, that
/// nothing else uses. Its content may be anything.
unsafe fn boot_at(record: *mut BootRecord) -> (BootReason, u32) {
    // SAFETY: the caller's promise: valid, aligned, ours alone; any bits are a u32.
    unsafe {
        let magic = read_volatile(addr_of_mut!((*record).magic));
        let count = read_volatile(addr_of_mut!((*record).count));
        let check = read_volatile(addr_of_mut!((*record).check));
        let cause = read_volatile(addr_of_mut!((*record).cause));
        let (reason, count) = if magic != MAGIC || check != !count {
            (BootReason::PowerOn, 1)
        } else {
            let reason = match cause {
                CAUSE_WATCHDOG => BootReason::Watchdog,
                CAUSE_FAULT => BootReason::Fault,
                _ => BootReason::SoftwareReset,
            };
            (reason, count.wrapping_add(1).max(1))
        };
        write_volatile(addr_of_mut!((*record).count), count);
        write_volatile(addr_of_mut!((*record).check), !count);
        write_volatile(addr_of_mut!((*record).cause), CAUSE_NONE);
        write_volatile(addr_of_mut!((*record).magic), MAGIC);
        (reason, count)
    }
}

/// [`note`] on the record at `record`.
///
/// # Safety
/// As for [`boot_at`].
unsafe fn note_at(record: *mut BootRecord, reason: BootReason) {
    let cause = match reason {
        BootReason::Watchdog => CAUSE_WATCHDOG,
        BootReason::Fault => CAUSE_FAULT,
        BootReason::PowerOn | BootReason::SoftwareReset => CAUSE_NONE,
    };
    // SAFETY: the caller's promise, as for `boot`.
    unsafe { write_volatile(addr_of_mut!((*record).cause), cause) }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn power_on_then_resets_count_and_name_their_cause() {
        let mut record = BootRecord {
            magic: 0xdead_beef,
            count: 7,
            check: 0,
            cause: CAUSE_WATCHDOG,
        };
        let at = &mut record as *mut BootRecord;
        // SAFETY: a local record, ours alone.
        unsafe {
            assert_eq!(boot_at(at), (BootReason::PowerOn, 1));
            assert_eq!(boot_at(at), (BootReason::SoftwareReset, 2));
            note_at(at, BootReason::Watchdog);
            assert_eq!(boot_at(at), (BootReason::Watchdog, 3));
            note_at(at, BootReason::Fault);
            assert_eq!(boot_at(at), (BootReason::Fault, 4));
            assert_eq!(boot_at(at), (BootReason::SoftwareReset, 5));
            (*at).check ^= 1;
            assert_eq!(boot_at(at), (BootReason::PowerOn, 1));
        }
    }
}
