//! The one clock: every wall-clock reading of the sink goes through here, and the civil-date
//! arithmetic the commands and the schema share.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the system clock is before it; saturates in 2106).
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm; any year, proleptic
/// Gregorian). The date is not checked: see [`is_civil_date`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number (days since 1970-01-01), the inverse of
/// [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Whether `y-m-d` is a day of the calendar (`2024-02-29` is, `2023-02-29` and `2024-13-01` are
/// not).
pub fn is_civil_date(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    i64::from(d) <= days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2014, 7, 1), 16252);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        for days in [-800_000, -1, 0, 59, 60, 11_016, 16_252, 19_782, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert!(is_civil_date(y, m, d), "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(16_252), (2014, 7, 1));
        assert!(is_civil_date(2024, 2, 29) && is_civil_date(2000, 2, 29));
        assert!(is_civil_date(2023, 12, 31) && is_civil_date(2023, 4, 30));
        assert!(!is_civil_date(2023, 2, 29) && !is_civil_date(1900, 2, 29));
        assert!(!is_civil_date(2024, 13, 1) && !is_civil_date(2024, 0, 1));
        assert!(!is_civil_date(2024, 4, 31) && !is_civil_date(2024, 1, 0));
    }
}
