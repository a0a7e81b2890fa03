//! Driver for the SMSC LAN9118 Ethernet controller: raw frames in and out, polled.
//!
//! It knows nothing of any network stack: [`Lan9118::receive`] copies the next good
//! frame (without its FCS) into a caller's buffer, [`Lan9118::transmit`] queues one
//! frame (the chip pads it and appends the FCS). The interrupt line is left disabled
//! unless [`Lan9118::enable_rx_interrupt`] is called; the board then uses it only to
//! wake the core, with the NVIC line masked by PRIMASK.
//!
//! Register facts come from the LAN9118 data sheet and from how QEMU's model behaves
//! (hw/net/lan9118.c): 32-bit accesses only, FIFO words little-endian, frame lengths in
//! the RX status including the 4-byte FCS.

use core::ptr::{read_volatile, write_volatile};

use socklab_baremetal::FifoNic;

/// Where the mps2-an385 maps the LAN9118 (NVIC line [`MPS2_AN385_IRQ`]).
pub const MPS2_AN385_BASE: usize = 0x4020_0000;
/// The LAN9118's NVIC interrupt line on the mps2-an385.
pub const MPS2_AN385_IRQ: u16 = 13;

/// Largest frame [`Lan9118::transmit`] takes and [`Lan9118::receive`] returns: a
/// 1500-byte payload plus the 14-byte Ethernet header, FCS excluded.
pub const MAX_FRAME_LEN: usize = 1514;
/// Smallest frame that is a frame at all: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;
/// Frame check sequence the chip appends on TX and leaves in the RX FIFO.
const FCS_LEN: usize = 4;

/// Register offsets from the chip's base address (system control and status registers;
/// the MAC's own registers sit behind [`reg::MAC_CSR_CMD`], see [`mac`]).
mod reg {
    /// RX data FIFO port (0x00..0x1C all alias it): each read pops one word of the
    /// frame at the head of the FIFO.
    pub const RX_DATA_FIFO: usize = 0x00;
    /// TX data FIFO port (0x20..0x3C all alias it): command A, command B, then the
    /// frame's words.
    pub const TX_DATA_FIFO: usize = 0x20;
    /// RX status FIFO port: each read pops the status word of the next received frame.
    pub const RX_STATUS_FIFO: usize = 0x40;
    /// TX status FIFO port: each read pops the status of one transmitted frame.
    pub const TX_STATUS_FIFO: usize = 0x48;
    /// ID_REV: chip ID in bits 16..31 (0x0118), revision in bits 0..15.
    pub const ID_REV: usize = 0x50;
    /// IRQ_CFG: interrupt pin; bit 8 enable, bit 4 polarity (1 = active high),
    /// bit 0 buffer type (1 = push-pull), bit 12 = an enabled interrupt is pending.
    pub const IRQ_CFG: usize = 0x54;
    /// INT_STS: interrupt sources, write 1 to clear.
    pub const INT_STS: usize = 0x58;
    /// INT_EN: which INT_STS bits drive the pin.
    pub const INT_EN: usize = 0x5C;
    /// BYTE_TEST: always reads 0x87654321; proves the bus and the byte order.
    pub const BYTE_TEST: usize = 0x64;
    /// FIFO_INT: FIFO level interrupt thresholds; bits 0..7 RX status level.
    pub const FIFO_INT: usize = 0x68;
    /// RX_CFG: RX data offset and end alignment (0 = none), bit 15 dumps the RX FIFOs.
    pub const RX_CFG: usize = 0x6C;
    /// TX_CFG: bit 1 TX_ON, bit 15 dumps the TX status FIFO, bit 14 the TX data FIFO.
    pub const TX_CFG: usize = 0x70;
    /// HW_CFG: bit 0 SRST (soft reset, self-clearing), TX FIFO size in bits 16..19.
    pub const HW_CFG: usize = 0x74;
    /// RX_FIFO_INF: bits 16..23 frames in the RX status FIFO, bits 0..15 bytes in the
    /// RX data FIFO.
    pub const RX_FIFO_INF: usize = 0x7C;
    /// TX_FIFO_INF: bits 16..23 entries in the TX status FIFO, bits 0..15 free bytes in
    /// the TX data FIFO.
    pub const TX_FIFO_INF: usize = 0x80;
    /// PMT_CTRL: power management; bit 0 READY (the chip accepts register accesses).
    pub const PMT_CTRL: usize = 0x84;
    /// FREE_RUN: free-running 25 MHz counter.
    pub const FREE_RUN: usize = 0x9C;
    /// RX_DROP: frames the chip dropped (RX FIFO full), cleared by reading.
    pub const RX_DROP: usize = 0xA0;
    /// MAC_CSR_CMD: indirect access to the MAC registers; bit 31 busy, bit 30 read
    /// (0 = write), bits 0..7 MAC register index.
    pub const MAC_CSR_CMD: usize = 0xA4;
    /// MAC_CSR_DATA: the value a MAC register access reads or writes.
    pub const MAC_CSR_DATA: usize = 0xA8;
}

/// MAC registers, reached through MAC_CSR_CMD / MAC_CSR_DATA by index.
mod mac {
    /// MAC_CR: MAC control (bits below).
    pub const CR: u32 = 1;
    /// ADDRH: MAC address bytes 4 and 5 (bits 0..15, byte 4 lowest).
    pub const ADDRH: u32 = 2;
    /// ADDRL: MAC address bytes 0..3 (byte 0 lowest).
    pub const ADDRL: u32 = 3;
    /// MII_ACC: PHY access; bits 11..15 PHY address, 6..10 PHY register, bit 1 write,
    /// bit 0 busy.
    pub const MII_ACC: u32 = 6;
    /// MII_DATA: the PHY register value read or to be written (bits 0..15).
    pub const MII_DATA: u32 = 7;

    /// MAC_CR bit: receiver enable.
    pub const CR_RXEN: u32 = 1 << 2;
    /// MAC_CR bit: transmitter enable.
    pub const CR_TXEN: u32 = 1 << 3;
    /// MAC_CR bit: pass all multicast frames (IPv6 neighbour discovery needs them;
    /// the hash filter would need its own CRC per group).
    pub const CR_MCPAS: u32 = 1 << 19;
    /// MAC_CR bit: full duplex.
    pub const CR_FDPX: u32 = 1 << 20;
}

/// Registers of the internal PHY (IEEE 802.3 clause 22), at PHY address 1.
mod phy {
    /// The internal PHY's address on the MII bus.
    pub const ADDR: u32 = 1;
    /// Basic control: bit 15 reset, bit 12 auto-negotiation enable, bit 9 restart it.
    pub const BCR: u32 = 0;
    /// Basic status: bit 2 link up (latched low: read twice for the present state).
    pub const BSR: u32 = 1;
    /// PHY identifier 1 (OUI bits).
    pub const ID1: u32 = 2;
    /// PHY identifier 2 (OUI bits, model, revision).
    pub const ID2: u32 = 3;
    /// Auto-negotiation advertisement.
    pub const ANAR: u32 = 4;
    /// Auto-negotiation link partner ability.
    pub const ANLPAR: u32 = 5;

    pub const BCR_RESET: u32 = 1 << 15;
    pub const BCR_AN_ENABLE: u32 = 1 << 12;
    pub const BCR_AN_RESTART: u32 = 1 << 9;
    pub const BSR_LINK_UP: u32 = 1 << 2;
    /// Advertise 10/100, half and full duplex, IEEE 802.3 selector.
    pub const ANAR_ALL_10_100: u32 = 0x01E1;
    /// 100BASE-TX full duplex and 10BASE-T full duplex ability bits.
    pub const AN_FULL_DUPLEX: u32 = (1 << 8) | (1 << 6);
}

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const CHIP_ID_LAN9118: u32 = 0x0118;
const PMT_READY: u32 = 1 << 0;
const HW_CFG_SRST: u32 = 1 << 0;
const TX_CFG_TX_ON: u32 = 1 << 1;
const IRQ_CFG_TYPE_PUSH_PULL: u32 = 1 << 0;
const IRQ_CFG_POL_HIGH: u32 = 1 << 4;
const IRQ_CFG_EN: u32 = 1 << 8;
/// INT_STS / INT_EN bit: the RX status FIFO holds more entries than FIFO_INT's level.
const INT_RSFL: u32 = 1 << 3;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MII_BUSY: u32 = 1 << 0;
const MII_WRITE: u32 = 1 << 1;
/// RX status: frame length in bytes, FCS included, bits 16..29.
const RXS_LEN_SHIFT: u32 = 16;
const RXS_LEN_MASK: u32 = 0x3FFF;
/// RX status: error summary (CRC, runt, too long, collision, MII, watchdog, length).
const RXS_ERROR: u32 = 1 << 15;
/// RX status: the frame failed the address filter (only delivered with RXALL).
const RXS_FILTER_FAIL: u32 = 1 << 30;
/// TX status: error summary (carrier loss, collisions, deferral, underrun).
const TXS_ERROR: u32 = 1 << 15;
/// TX command A: first segment of a frame.
const TXC_A_FIRST: u32 = 1 << 13;
/// TX command A: last segment of a frame.
const TXC_A_LAST: u32 = 1 << 12;
/// Bounded busy-wait for self-clearing bits: far more than the chip ever needs.
const SPIN_LIMIT: u32 = 1_000_000;

/// What [`Lan9118::init`] found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// BYTE_TEST did not read 0x87654321: no chip, or the bus is wrong.
    ByteTest(u32),
    /// ID_REV names another chip.
    UnknownChip(u32),
    /// READY or the soft reset did not complete in time.
    ResetTimeout,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::ByteTest(v) => write!(f, "BYTE_TEST reads {v:#010x}, not 0x87654321"),
            InitError::UnknownChip(id) => write!(f, "ID_REV {id:#010x} is not a LAN9118"),
            InitError::ResetTimeout => write!(f, "the chip did not come out of reset"),
        }
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// Shorter than an Ethernet header or longer than [`MAX_FRAME_LEN`].
    Length(usize),
    /// The TX data FIFO has no room for it now; try again after the chip sent some.
    NoSpace,
}

/// The chip's identity, as [`Lan9118::init`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipId {
    /// ID_REV: 0x0118_xxxx.
    pub id_rev: u32,
    /// The internal PHY's identifier (ID1 << 16 | ID2).
    pub phy_id: u32,
}

/// Frame and error counters, since [`Lan9118::init`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Good frames handed to the caller.
    pub rx_frames: u32,
    /// Their bytes, FCS excluded.
    pub rx_bytes: u64,
    /// Frames dropped because the chip flagged an error (CRC, runt, too long, ...).
    pub rx_errors: u32,
    /// Frames dropped for their length: shorter than a header, or longer than the
    /// caller's buffer.
    pub rx_length_errors: u32,
    /// Frames the chip itself dropped because its RX FIFO was full (RX_DROP).
    pub rx_missed: u32,
    /// Frames queued for transmission.
    pub tx_frames: u32,
    /// Their bytes, FCS excluded.
    pub tx_bytes: u64,
    /// TX status entries with the error bit set.
    pub tx_errors: u32,
    /// Frames refused because the TX FIFO was full.
    pub tx_no_space: u32,
    /// Frames refused for their length.
    pub tx_length_errors: u32,
    /// MAC or PHY register accesses that stayed busy past the spin limit.
    pub csr_timeouts: u32,
}

/// One LAN9118 at a fixed address.
pub struct Lan9118 {
    base: usize,
    tx_tag: u16,
    counters: Counters,
}

impl Lan9118 {
    /// A driver for the chip at `base`. Nothing is touched until [`init`](Self::init).
    ///
    /// # Safety
    /// `base` must be the address of a LAN9118's register block, and this driver must
    /// be the only code that accesses it for as long as it lives.
    pub unsafe fn new(base: usize) -> Lan9118 {
        Lan9118 {
            base,
            tx_tag: 0,
            counters: Counters::default(),
        }
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: base + offset is a register of this chip, ours alone.
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&mut self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Spins until `done` holds, at most [`SPIN_LIMIT`] times; false on timeout.
    fn spin_until(&self, mut done: impl FnMut(&Self) -> bool) -> bool {
        (0..SPIN_LIMIT).any(|_| done(self))
    }

    /// Checks the bus, soft-resets the chip, checks its ID, configures the FIFOs and
    /// the PHY and leaves the transmitter on, the receiver off and the interrupt pin
    /// deasserted. The MAC address is the chip's default (EEPROM or QEMU's `mac=`) until
    /// [`set_mac_address`](Self::set_mac_address); frames flow after
    /// [`enable`](Self::enable).
    pub fn init(&mut self) -> Result<ChipId, InitError> {
        let byte_test = self.read(reg::BYTE_TEST);
        if byte_test != BYTE_TEST_VALUE {
            return Err(InitError::ByteTest(byte_test));
        }
        if !self.spin_until(|c| c.read(reg::PMT_CTRL) & PMT_READY != 0) {
            return Err(InitError::ResetTimeout);
        }
        self.write(reg::HW_CFG, HW_CFG_SRST);
        let reset_done = self.spin_until(|c| c.read(reg::HW_CFG) & HW_CFG_SRST == 0)
            && self.spin_until(|c| c.read(reg::PMT_CTRL) & PMT_READY != 0);
        if !reset_done {
            return Err(InitError::ResetTimeout);
        }
        let id_rev = self.read(reg::ID_REV);
        if id_rev >> 16 != CHIP_ID_LAN9118 {
            return Err(InitError::UnknownChip(id_rev));
        }
        self.counters = Counters::default();

        // Interrupt pin: active high, push-pull, disabled, so it stays deasserted. (At
        // reset IRQ_CFG = 0 means active low, which QEMU models as asserted for ever.)
        self.write(reg::INT_EN, 0);
        self.write(reg::INT_STS, u32::MAX);
        self.write(reg::IRQ_CFG, IRQ_CFG_POL_HIGH | IRQ_CFG_TYPE_PUSH_PULL);
        // RSFL fires as soon as one frame's status is waiting (level 0); TX data
        // available level left at its reset value.
        let fifo_int = self.read(reg::FIFO_INT) & !0xFF;
        self.write(reg::FIFO_INT, fifo_int);
        // Frames start at the first byte of the first word, no end padding.
        self.write(reg::RX_CFG, 0);
        self.write(reg::TX_CFG, TX_CFG_TX_ON);

        // PHY: reset, advertise 10/100 half/full, auto-negotiate.
        self.phy_write(phy::BCR, phy::BCR_RESET);
        for _ in 0..SPIN_LIMIT {
            if self.phy_read(phy::BCR) & phy::BCR_RESET == 0 {
                break;
            }
        }
        self.phy_write(phy::ANAR, phy::ANAR_ALL_10_100);
        self.phy_write(phy::BCR, phy::BCR_AN_ENABLE | phy::BCR_AN_RESTART);
        let phy_id = (self.phy_read(phy::ID1) << 16) | self.phy_read(phy::ID2);
        Ok(ChipId { id_rev, phy_id })
    }

    /// Turns the MAC's receiver and transmitter on: frames to this MAC address, to
    /// broadcast and to any multicast group are received; duplex follows the PHY's
    /// auto-negotiation result.
    pub fn enable(&mut self) {
        let common = self.phy_read(phy::ANAR) & self.phy_read(phy::ANLPAR);
        let mut cr = mac::CR_RXEN | mac::CR_TXEN | mac::CR_MCPAS;
        if common & phy::AN_FULL_DUPLEX != 0 {
            cr |= mac::CR_FDPX;
        }
        self.mac_write(mac::CR, cr);
    }

    /// The MAC address the chip filters for and sends from.
    pub fn mac_address(&mut self) -> [u8; 6] {
        let low = self.mac_read(mac::ADDRL).to_le_bytes();
        let high = self.mac_read(mac::ADDRH).to_le_bytes();
        [low[0], low[1], low[2], low[3], high[0], high[1]]
    }

    /// Sets the MAC address (lost on reset).
    pub fn set_mac_address(&mut self, addr: [u8; 6]) {
        let low = u32::from_le_bytes([addr[0], addr[1], addr[2], addr[3]]);
        let high = u32::from_le_bytes([addr[4], addr[5], 0, 0]);
        self.mac_write(mac::ADDRL, low);
        self.mac_write(mac::ADDRH, high);
    }

    /// Whether the PHY reports a link.
    pub fn is_link_up(&mut self) -> bool {
        // Link status latches low: the first read reports any drop since the last one.
        let _ = self.phy_read(phy::BSR);
        self.phy_read(phy::BSR) & phy::BSR_LINK_UP != 0
    }

    /// Received frames waiting in the chip (entries in the RX status FIFO).
    pub fn rx_frames_waiting(&self) -> u32 {
        (self.read(reg::RX_FIFO_INF) >> 16) & 0xFF
    }

    /// Copies the next good frame into `buf` and returns its length, FCS stripped.
    /// Frames the chip flagged as bad, or that do not fit `buf`, are dropped on the way
    /// and counted. `None` when no frame is waiting.
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        while self.rx_frames_waiting() > 0 {
            let status = self.read(reg::RX_STATUS_FIFO);
            let wire_len = ((status >> RXS_LEN_SHIFT) & RXS_LEN_MASK) as usize;
            let words = wire_len.div_ceil(4);
            if status & (RXS_ERROR | RXS_FILTER_FAIL) != 0 {
                self.counters.rx_errors += 1;
                self.discard_rx_words(words);
                continue;
            }
            let len = wire_len.saturating_sub(FCS_LEN);
            if len < MIN_FRAME_LEN || len > buf.len() {
                self.counters.rx_length_errors += 1;
                self.discard_rx_words(words);
                continue;
            }
            let mut read = 0;
            for chunk in buf[..len].chunks_mut(4) {
                let word = self.read(reg::RX_DATA_FIFO).to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
                read += 1;
            }
            // The FCS (or what is left of it) is in the frame's last word(s).
            self.discard_rx_words(words - read);
            self.counters.rx_frames += 1;
            self.counters.rx_bytes += len as u64;
            return Some(len);
        }
        None
    }

    /// Pops `words` words of the current frame from the RX data FIFO.
    ///
    /// The data sheet's fast-forward (RX_DP_CTRL) would skip long frames quicker, but
    /// QEMU's model of it leaves its FIFO fill count wrong, so frames are always read
    /// out word by word.
    fn discard_rx_words(&mut self, words: usize) {
        for _ in 0..words {
            let _ = self.read(reg::RX_DATA_FIFO);
        }
    }

    /// Whether the TX data FIFO has room for a frame of `len` bytes now.
    pub fn can_transmit(&self, len: usize) -> bool {
        let free = (self.read(reg::TX_FIFO_INF) & 0xFFFF) as usize;
        // Two command words, then the frame rounded up to whole words.
        free >= 8 + len.div_ceil(4) * 4
    }

    /// Queues one frame (destination address first, no FCS: the chip adds it and pads
    /// short frames to the 64-byte minimum).
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.drain_tx_status();
        if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame.len()) {
            self.counters.tx_length_errors += 1;
            return Err(TxError::Length(frame.len()));
        }
        if !self.can_transmit(frame.len()) {
            self.counters.tx_no_space += 1;
            return Err(TxError::NoSpace);
        }
        let len = frame.len() as u32;
        self.tx_tag = self.tx_tag.wrapping_add(1);
        // Command A: one buffer that is the whole frame, no offset, no end alignment.
        self.write(reg::TX_DATA_FIFO, TXC_A_FIRST | TXC_A_LAST | len);
        // Command B: a tag echoed in the TX status, and the frame length.
        self.write(reg::TX_DATA_FIFO, (u32::from(self.tx_tag) << 16) | len);
        for chunk in frame.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write(reg::TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += frame.len() as u64;
        Ok(())
    }

    /// Pops every TX status entry, counting errors. The chip stops sending when this
    /// FIFO is full, so every transmit drains it first.
    fn drain_tx_status(&mut self) {
        while (self.read(reg::TX_FIFO_INF) >> 16) & 0xFF != 0 {
            if self.read(reg::TX_STATUS_FIFO) & TXS_ERROR != 0 {
                self.counters.tx_errors += 1;
            }
        }
    }

    /// Lets the interrupt pin go high while a received frame's status is waiting
    /// (RSFL); pair with [`clear_rx_interrupt`](Self::clear_rx_interrupt).
    pub fn enable_rx_interrupt(&mut self) {
        self.write(reg::INT_STS, INT_RSFL);
        self.write(reg::INT_EN, INT_RSFL);
        self.write(
            reg::IRQ_CFG,
            IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_TYPE_PUSH_PULL,
        );
    }

    /// Acknowledges RSFL so the pin drops until the next frame arrives.
    pub fn clear_rx_interrupt(&mut self) {
        self.write(reg::INT_STS, INT_RSFL);
    }

    /// The chip's free-running 25 MHz counter.
    pub fn free_run(&self) -> u32 {
        self.read(reg::FREE_RUN)
    }

    /// Counters so far (collects the chip's RX_DROP count first).
    pub fn counters(&mut self) -> Counters {
        let dropped = self.read(reg::RX_DROP);
        self.counters.rx_missed = self.counters.rx_missed.wrapping_add(dropped);
        self.counters
    }

    fn mac_csr_wait(&mut self) {
        if !self.spin_until(|c| c.read(reg::MAC_CSR_CMD) & MAC_CSR_BUSY == 0) {
            self.counters.csr_timeouts += 1;
        }
    }

    fn mac_read(&mut self, index: u32) -> u32 {
        self.mac_csr_wait();
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        self.mac_csr_wait();
        self.read(reg::MAC_CSR_DATA)
    }

    fn mac_write(&mut self, index: u32, value: u32) {
        self.mac_csr_wait();
        self.write(reg::MAC_CSR_DATA, value);
        self.write(reg::MAC_CSR_CMD, MAC_CSR_BUSY | index);
        self.mac_csr_wait();
    }

    fn mii_wait(&mut self) {
        let done = (0..SPIN_LIMIT).any(|_| self.mac_read(mac::MII_ACC) & MII_BUSY == 0);
        if !done {
            self.counters.csr_timeouts += 1;
        }
    }

    fn phy_read(&mut self, register: u32) -> u32 {
        self.mii_wait();
        self.mac_write(mac::MII_ACC, (phy::ADDR << 11) | (register << 6) | MII_BUSY);
        self.mii_wait();
        self.mac_read(mac::MII_DATA) & 0xFFFF
    }

    fn phy_write(&mut self, register: u32, value: u32) {
        self.mii_wait();
        self.mac_write(mac::MII_DATA, value & 0xFFFF);
        self.mac_write(
            mac::MII_ACC,
            (phy::ADDR << 11) | (register << 6) | MII_WRITE | MII_BUSY,
        );
        self.mii_wait();
    }
}

/// The chip as the bare-metal support crate's FIFO NIC.
impl FifoNic for Lan9118 {
    const MAX_FRAME_LEN: usize = MAX_FRAME_LEN;

    fn receive(&mut self, buffer: &mut [u8]) -> Option<usize> {
        Lan9118::receive(self, buffer)
    }

    fn can_transmit(&self, len: usize) -> bool {
        Lan9118::can_transmit(self, len)
    }

    fn transmit(&mut self, frame: &[u8]) {
        // A refused frame is counted by `transmit`; TCP retransmits what matters.
        let _ = Lan9118::transmit(self, frame);
    }
}
