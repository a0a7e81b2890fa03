//! Crashing firmware on purpose, to check that a crash fails a test: copies
//! a QEMU board's image with the first instruction of one function replaced by
//! an undefined one (`udf` on the Cortex-M3, `c.unimp` on RISC-V), so calling
//! it faults; the board's handler (HardFault, or the RISC-V exception handler)
//! prints the fault on the UART and ends QEMU with status 1.
//!
//! The ELF is patched in the file (QEMU's `-device loader` writes before
//! `-kernel` loads, so it cannot patch code): the function's address comes
//! from the symbol table, its file offset from the section that holds it.

use std::fs;
use std::path::{Path, PathBuf};

/// `udf #254` in Thumb, little-endian.
const UDF: [u8; 2] = [0xfe, 0xde];
/// `c.unimp` (all zero bits): an illegal instruction on RISC-V.
const UNIMP: [u8; 2] = [0x00, 0x00];
/// ELF `e_machine` of Arm.
const EM_ARM: u16 = 40;
/// ELF `e_machine` of RISC-V.
const EM_RISCV: u16 = 243;

/// Copies `image` to `dir` with the function whose (mangled) symbol name
/// contains every one of `parts` replaced by a fault; returns the copy.
pub fn image_faulting_in(image: &Path, dir: &Path, parts: &[&str]) -> Result<PathBuf, String> {
    let mut elf = fs::read(image).map_err(|e| format!("read {}: {e}", image.display()))?;
    let fault = match u16_at(&elf, 0x12)? {
        EM_ARM => UDF,
        EM_RISCV => UNIMP,
        other => {
            return Err(format!(
                "an ELF for machine {other}, neither Arm nor RISC-V"
            ))
        }
    };
    let offset = function_offset(&elf, parts)?;
    elf[offset..offset + fault.len()].copy_from_slice(&fault);
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let copy = dir.join(format!("faulting-in-{}.elf", parts.join("-")));
    fs::write(&copy, elf).map_err(|e| format!("write {}: {e}", copy.display()))?;
    Ok(copy)
}

fn u16_at(elf: &[u8], at: usize) -> Result<u16, String> {
    elf.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

fn u32_at(elf: &[u8], at: usize) -> Result<u32, String> {
    elf.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("ELF truncated at {at}"))
}

/// One ELF32 section header: (address, file offset, size, link).
fn section(elf: &[u8], index: usize) -> Result<(u32, u32, u32, u32), String> {
    let shoff = u32_at(elf, 0x20)? as usize;
    let shentsize = u16_at(elf, 0x2e)? as usize;
    let at = shoff + index * shentsize;
    Ok((
        u32_at(elf, at + 12)?,
        u32_at(elf, at + 16)?,
        u32_at(elf, at + 20)?,
        u32_at(elf, at + 24)?,
    ))
}

/// The file offset of the first instruction of the function named by `parts`.
fn function_offset(elf: &[u8], parts: &[&str]) -> Result<usize, String> {
    const SHT_SYMTAB: u32 = 2;
    const STT_FUNC: u8 = 2;
    if elf.get(..6) != Some(b"\x7fELF\x01\x01".as_slice()) {
        return Err("not a little-endian ELF32 file".into());
    }
    let shoff = u32_at(elf, 0x20)? as usize;
    let shentsize = u16_at(elf, 0x2e)? as usize;
    let shnum = u16_at(elf, 0x30)? as usize;
    let symtab = (0..shnum)
        .find(|&i| u32_at(elf, shoff + i * shentsize + 4) == Ok(SHT_SYMTAB))
        .ok_or("no symbol table (stripped image?)")?;
    let (_, sym_off, sym_size, strtab) = section(elf, symtab)?;
    let (_, str_off, _, _) = section(elf, strtab as usize)?;
    let mut found = Vec::new();
    for entry in (sym_off..sym_off + sym_size).step_by(16) {
        let entry = entry as usize;
        if elf.get(entry + 12).map(|info| info & 0xf) != Some(STT_FUNC) {
            continue;
        }
        let name_at = str_off as usize + u32_at(elf, entry)? as usize;
        let name_len = elf[name_at..].iter().position(|&b| b == 0).unwrap_or(0);
        let name = String::from_utf8_lossy(&elf[name_at..name_at + name_len]);
        if parts.iter().all(|part| name.contains(part)) {
            let value = u32_at(elf, entry + 4)? & !1; // Thumb bit (0 on RISC-V)
            let shndx = u16_at(elf, entry + 14)? as usize;
            found.push((name.into_owned(), value, shndx));
        }
    }
    match found.as_slice() {
        [(_, addr, shndx)] => {
            let (sh_addr, sh_offset, sh_size, _) = section(elf, *shndx)?;
            if *addr < sh_addr || addr + 2 > sh_addr + sh_size {
                return Err(format!("symbol at {addr:#x} is outside its section"));
            }
            Ok((sh_offset + (addr - sh_addr)) as usize)
        }
        [] => Err(format!("no function symbol contains {parts:?}")),
        many => Err(format!(
            "{} function symbols contain {parts:?}: {:?}",
            many.len(),
            many.iter().map(|(name, ..)| name).collect::<Vec<_>>()
        )),
    }
}
