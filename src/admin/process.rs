//! The standard `process_*` metrics of the Prometheus client libraries, read from
//! `/proc/self` on every scrape (Linux):
//!
//! | metric | meaning |
//! |---|---|
//! | `process_cpu_seconds_total` | user and system CPU time |
//! | `process_resident_memory_bytes` | resident set size |
//! | `process_virtual_memory_bytes` | virtual memory size |
//! | `process_open_fds` | open file descriptors |
//! | `process_max_fds` | the open-files limit |
//! | `process_start_time_seconds` | start time, seconds since the epoch |
//!
//! A value that cannot be read is left out of the scrape rather than reported as 0.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The `process_*` metrics, as a collector of an unprefixed registry.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self/stat`, `/proc/self/status` and `/proc/stat` give.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stat {
    pub cpu_seconds: f64,
    pub virtual_bytes: u64,
    pub resident_bytes: u64,
    pub start_time_seconds: f64,
}

/// The kernel's clock ticks of /proc times (USER_HZ, which Linux fixes at 100 for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// Parses `/proc/self/stat` (`stat`), `/proc/self/status` (`status`) and the boot time of
/// `/proc/stat` (`btime`).
pub fn parse_stat(stat: &str, status: &str, proc_stat: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let boot: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        let kb: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kb * 1024)
    };
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / TICKS_PER_SECOND,
        virtual_bytes: kib("VmSize:")?,
        resident_bytes: kib("VmRSS:")?,
        start_time_seconds: boot as f64 + field(22)? as f64 / TICKS_PER_SECOND,
    })
}

/// The soft open-files limit from `/proc/self/limits`.
pub fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let parsed = match (
            read("/proc/self/stat"),
            read("/proc/self/status"),
            read("/proc/stat"),
        ) {
            (Some(stat), Some(status), Some(proc_stat)) => parse_stat(&stat, &status, &proc_stat),
            _ => None,
        };
        if let Some(s) = parsed {
            encode_one(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                &ConstCounter::new(s.cpu_seconds),
            )?;
            encode_one(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                &ConstGauge::new(s.virtual_bytes as i64),
            )?;
            encode_one(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                &ConstGauge::new(s.resident_bytes as i64),
            )?;
            encode_one(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                &ConstGauge::new(s.start_time_seconds),
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            encode_one(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                &ConstGauge::new(fds.count() as i64),
            )?;
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(parse_max_fds)
        {
            encode_one(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                &ConstGauge::new(max as i64),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        // A command name with spaces and parentheses, as the kernel writes it.
        let stat = "4242 (mc (wan) gw) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615";
        let status = "Name:\tmcwan\nVmSize:\t  102400 kB\nVmRSS:\t   10240 kB\n";
        let s = parse_stat(stat, status, "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.virtual_bytes, 102_400 * 1024);
        assert_eq!(s.resident_bytes, 10_240 * 1024);
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 123.45);
        assert_eq!(parse_stat("garbage", status, "btime 1\n"), None);
    }

    #[test]
    fn this_process_is_read() {
        let read = |p: &str| std::fs::read_to_string(p).unwrap();
        let s = parse_stat(
            &read("/proc/self/stat"),
            &read("/proc/self/status"),
            &read("/proc/stat"),
        )
        .unwrap();
        assert!(
            s.resident_bytes > 0 && s.virtual_bytes >= s.resident_bytes,
            "{s:?}"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0 * 365.0);
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        assert!(parse_max_fds(&limits).is_some_and(|m| m > 0), "{limits}");
    }
}
