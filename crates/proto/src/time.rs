//! Calendar arithmetic on unix timestamps: the one days-to-civil-date conversion of
//! ferrocast. Like the rest of this crate it never reads a clock; callers pass the
//! time in.
//!
//! Written by hand rather than pulling in `chrono` or `time` for one function: the
//! HLS `#EXT-X-PROGRAM-DATE-TIME` ([`crate::hls`]) and the server's recording paths
//! (`YYYY-MM-DD/HH-MM-SS`) are its only users, and both want UTC only.

/// Proleptic Gregorian (year, month, day) of the day `days` after 1970-01-01 (negative
/// before it); Howard Hinnant's `civil_from_days`.
///
/// Counts in 400-year eras (146 097 days each) of years that start on March 1, so the
/// leap day is the last day of a year and month lengths follow the 153-days-per-5-
/// months pattern; then shifts back to January-based years. No `days` overflows the
/// arithmetic (the extreme ends saturate; dates that far out are meaningless anyway).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468); // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11, 0 = March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_a_day_by_day_count() {
        // Walk 1970..=2400 a day at a time and compare with a naive calendar.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..157_000 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn days_before_1970_and_extremes() {
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        for days in [i64::MAX / 86_400, i64::MIN / 86_400, i64::MAX, i64::MIN] {
            let (_, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        }
    }
}
