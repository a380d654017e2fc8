//! Send windows: the days and hours a channel may be used (e.g. the 12333 hotline calls
//! only in staffed hours). Times are local (Asia/Shanghai); the caller converts.

use chrono::{Datelike, Duration, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// Open on `days` from `start` (inclusive) to `end` (exclusive), local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWindow {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl SendWindow {
    /// Weekdays 09:00–17:00: the default staffed hours of the hotline.
    pub fn staffed_hours() -> Self {
        Self {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
            end: NaiveTime::from_hms_opt(17, 0, 0).expect("valid time"),
        }
    }

    /// Every day 08:00–21:00: the default for SMS and WeChat (quiet hours at night).
    pub fn daytime() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
            end: NaiveTime::from_hms_opt(21, 0, 0).expect("valid time"),
            ..Self::always()
        }
    }

    /// Always open.
    pub fn always() -> Self {
        Self {
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
            start: NaiveTime::MIN,
            end: NaiveTime::MIN,
        }
    }

    /// Parses `always`, or `DAYS HH:MM-HH:MM` where DAYS is a day (`mon`) or a range
    /// (`mon-fri`), e.g. `mon-fri 09:00-17:00`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "always" {
            return Ok(Self::always());
        }
        let (days, hours) = s
            .split_once(' ')
            .ok_or_else(|| format!("{s:?}: expected `always` or `mon-fri 09:00-17:00`"))?;
        let day = |d: &str| -> Result<Weekday, String> {
            d.parse::<Weekday>()
                .map_err(|_| format!("{d:?} is not a day (mon … sun)"))
        };
        let days = match days.split_once('-') {
            None => vec![day(days)?],
            Some((a, b)) => {
                let (mut d, last) = (day(a)?, day(b)?);
                let mut v = vec![d];
                while d != last {
                    d = d.succ();
                    v.push(d);
                }
                v
            }
        };
        let (start, end) = hours
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("{hours:?}: expected HH:MM-HH:MM"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| format!("{t:?} is not HH:MM"))
        };
        let (start, end) = (time(start)?, time(end)?);
        if end <= start {
            return Err(format!("{hours}: the end must be after the start"));
        }
        Ok(Self { days, start, end })
    }

    fn is_all_day(&self) -> bool {
        self.start == self.end
    }

    pub fn is_open(&self, at: NaiveDateTime) -> bool {
        self.days.contains(&at.weekday())
            && (self.is_all_day() || (at.time() >= self.start && at.time() < self.end))
    }

    /// `None` when open at `at`; otherwise the next opening. `None` too for a window
    /// with no days (never open), which callers should refuse at configuration time.
    pub fn next_open(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        if self.days.is_empty() || self.is_open(at) {
            return None;
        }
        for offset in 0..8 {
            let day = at.date() + Duration::days(offset);
            if !self.days.contains(&day.weekday()) {
                continue;
            }
            let open = day.and_time(self.start);
            if open > at {
                return Some(open);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn staffed_hours() {
        let w = SendWindow::staffed_hours();
        // 2026-11-27 is a Friday.
        assert!(w.is_open(t(2026, 11, 27, 9, 0)));
        assert!(w.is_open(t(2026, 11, 27, 16, 59)));
        assert!(!w.is_open(t(2026, 11, 27, 17, 0)));
        assert_eq!(w.next_open(t(2026, 11, 27, 10, 0)), None);
        assert_eq!(
            w.next_open(t(2026, 11, 27, 8, 0)),
            Some(t(2026, 11, 27, 9, 0))
        );
        // Friday evening and the weekend wait for Monday morning.
        assert_eq!(
            w.next_open(t(2026, 11, 27, 17, 30)),
            Some(t(2026, 11, 30, 9, 0))
        );
        assert_eq!(
            w.next_open(t(2026, 11, 29, 12, 0)),
            Some(t(2026, 11, 30, 9, 0))
        );
    }

    #[test]
    fn parses() {
        assert_eq!(
            SendWindow::parse("mon-fri 09:00-17:00").unwrap(),
            SendWindow::staffed_hours()
        );
        assert_eq!(SendWindow::parse("always").unwrap(), SendWindow::always());
        assert_eq!(
            SendWindow::parse("sat 10:00-12:00").unwrap().days,
            vec![Weekday::Sat]
        );
        assert!(SendWindow::parse("mon-fri 17:00-09:00").is_err());
        assert!(SendWindow::parse("someday 09:00-10:00").is_err());
    }

    #[test]
    fn always_open() {
        let w = SendWindow::always();
        assert!(w.is_open(t(2026, 11, 29, 3, 0)));
        assert_eq!(w.next_open(t(2026, 11, 29, 3, 0)), None);
    }
}

#[cfg(test)]
mod daytime_tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn daytime_has_quiet_hours_every_night() {
        let w = SendWindow::daytime();
        assert!(w.is_open(t(29, 8, 0)), "Sunday morning too");
        assert!(w.is_open(t(29, 20, 59)));
        assert!(!w.is_open(t(29, 21, 0)));
        assert!(!w.is_open(t(30, 7, 59)));
        assert_eq!(w.next_open(t(29, 22, 30)), Some(t(30, 8, 0)));
        assert_eq!(w.next_open(t(30, 0, 0)), Some(t(30, 8, 0)));
        assert_eq!(w.next_open(t(30, 12, 0)), None);
        assert_eq!(SendWindow::parse("mon-sun 08:00-21:00").unwrap(), w);
    }

    proptest::proptest! {
        /// Whatever the time, the next opening is open, later, and nothing between is.
        #[test]
        fn next_open_is_the_first_open_minute(minutes in 0i64..(14 * 24 * 60)) {
            for w in [SendWindow::daytime(), SendWindow::staffed_hours()] {
                let at = t(23, 0, 0) + Duration::minutes(minutes);
                match w.next_open(at) {
                    None => proptest::prop_assert!(w.is_open(at)),
                    Some(open) => {
                        proptest::prop_assert!(!w.is_open(at));
                        proptest::prop_assert!(open > at && w.is_open(open));
                        proptest::prop_assert!(!w.is_open(open - Duration::minutes(1)));
                    }
                }
            }
        }
    }
}
