//! What an import did: counts, bad lines, files cut short, and how they are printed.

use std::time::Duration;

/// A line of an export that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Data rows read (the header rows not counted).
    pub rows_read: u64,
    /// Activities the table already held, or that came earlier in the same import.
    pub already_present: u64,
    /// Activities written.
    pub new: u64,
    /// Activities older than `--retention` (by `event_date`), not imported.
    pub expired: u64,
    /// Activities ClickHouse refused (kept in the rejects table, or the rejects file).
    pub rejected: u64,
    pub bad_lines: Vec<BadLine>,
    /// Files that could not be read to their end (a truncated or corrupt gzip): where reading
    /// stopped and why. The rows before that point were imported.
    pub cut_short: Vec<BadLine>,
    pub elapsed: Duration,
}

impl Summary {
    /// Adds the rows of `other` (another file's, or another round's) to these.
    pub fn absorb(&mut self, other: Summary) {
        self.rows_read += other.rows_read;
        self.new += other.new;
        self.expired += other.expired;
        self.already_present += other.already_present;
        self.rejected += other.rejected;
        self.bad_lines.extend(other.bad_lines);
        self.cut_short.extend(other.cut_short);
    }

    /// ` N older than --retention (not imported),` when there are any.
    pub(super) fn expired_part(&self) -> String {
        match self.expired {
            0 => String::new(),
            n => format!(" {n} older than --retention (not imported),"),
        }
    }

    /// The summary as printed at the end (bad lines listed with their file and line number).
    pub fn render(&self) -> String {
        let mut out = format!(
            "read {} rows in {:.1}s: {} already present, {} new,{} {} refused by ClickHouse (kept in the rejects table), {} bad lines\n",
            self.rows_read,
            self.elapsed.as_secs_f64(),
            self.already_present,
            self.new,
            self.expired_part(),
            self.rejected,
            self.bad_lines.len()
        );
        const SHOWN: usize = 100;
        for b in self.bad_lines.iter().take(SHOWN) {
            out.push_str(&format!("  {}:{}: {}\n", b.file, b.line, b.reason));
        }
        if self.bad_lines.len() > SHOWN {
            out.push_str(&format!(
                "  … and {} more bad lines\n",
                self.bad_lines.len() - SHOWN
            ));
        }
        for c in &self.cut_short {
            out.push_str(&format!(
                "  {}:{}: cannot be read from here on ({}); the rows before it were imported\n",
                c.file, c.line, c.reason
            ));
        }
        out
    }
}
