//! Up/down state of one probed path, with fall/rise thresholds.

/// How many consecutive misses make a peer down, and answers make it up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub fall: u32,
    pub rise: u32,
}

#[derive(Clone, Debug)]
pub struct PeerHealth {
    thresholds: Thresholds,
    up: bool,
    streak: u32,
}

impl PeerHealth {
    /// A new path counts as up: a gateway that just started does not drain its peers before it
    /// has even asked them.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            up: true,
            streak: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records an answer; true when the state changed.
    pub fn answer(&mut self) -> bool {
        self.observe(true)
    }

    /// Records a miss; true when the state changed.
    pub fn miss(&mut self) -> bool {
        self.observe(false)
    }

    fn observe(&mut self, ok: bool) -> bool {
        if ok == self.up {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if self.up {
            self.thresholds.fall
        } else {
            self.thresholds.rise
        };
        if self.streak >= needed.max(1) {
            self.up = ok;
            self.streak = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { fall: 3, rise: 2 };

    #[test]
    fn goes_down_after_fall_consecutive_misses() {
        let mut h = PeerHealth::new(T);
        assert!(!h.miss() && !h.miss());
        assert!(h.miss());
        assert!(!h.is_up());
    }

    #[test]
    fn an_answer_resets_the_miss_streak() {
        let mut h = PeerHealth::new(T);
        h.miss();
        h.miss();
        h.answer();
        assert!(!h.miss() && !h.miss());
        assert!(h.is_up());
    }

    #[test]
    fn comes_back_after_rise_consecutive_answers() {
        let mut h = PeerHealth::new(T);
        for _ in 0..3 {
            h.miss();
        }
        assert!(!h.answer());
        assert!(h.answer());
        assert!(h.is_up());
    }
}
