//! What the kernel says a process used: CPU time from `/proc/PID/stat`, memory from
//! `/proc/PID/status`. Linux only; the parsers are pure so that they can be tested on sample text.

use std::process::Command;

/// Clock ticks per second that `/proc/PID/stat` counts in (`USER_HZ`).
///
/// Read once from `getconf CLK_TCK`; 100 when that fails, which is its value on every mainstream
/// Linux architecture.
pub(crate) fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// User plus system CPU time of the whole process (every thread, live or exited), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&text)
}

/// Reads `utime + stime` (fields 14 and 15) from the text of `/proc/PID/stat`.
///
/// The command name in field 2 is in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: utime is field 14, the 12th one here.
    let mut fields = after_comm.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory now and at its peak, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `VmRSS`: resident set size now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the peak resident set size since the process started.
    pub(crate) hwm_kib: u64,
}

/// Reads the memory figures of a live process.
pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_memory(&text)
}

/// Reads `VmRSS` and `VmHWM` from the text of `/proc/PID/status`.
pub(crate) fn parse_status_memory(status: &str) -> Option<Memory> {
    let kib = |key: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
        })
    };
    Some(Memory {
        rss_kib: kib("VmRSS")?,
        hwm_kib: kib("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_come_from_fields_14_and_15() {
        let stat = "4242 (clawlet-webhookd) S 1 4242 4242 0 -1 4194560 2046 0 0 0 \
                    1234 567 0 0 20 0 5 0 1873 1270374400 4000 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17991 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(1234 + 567));
        // A command name with spaces and parentheses must not shift the fields.
        let tricky = "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_cpu_ticks(tricky), Some(30));
        assert_eq!(parse_stat_cpu_ticks("7 (short) R 1 2 3"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status = "Name:\twebhook\nVmPeak:\t 1260000 kB\nVmHWM:\t   20480 kB\n\
                      VmRSS:\t   18432 kB\nThreads:\t7\n";
        assert_eq!(
            parse_status_memory(status),
            Some(Memory {
                rss_kib: 18432,
                hwm_kib: 20480
            })
        );
        assert_eq!(parse_status_memory("Name:\tzombie\nThreads:\t1\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(memory(pid).is_some_and(|m| m.hwm_kib >= m.rss_kib && m.rss_kib > 0));
    }
}
