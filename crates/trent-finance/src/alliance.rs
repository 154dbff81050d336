//! Alliance risk/reward: who gains and who loses when a pathway costs more or less than
//! planned.
//!
//! Why it exists: the plan's delivery model is alliances (Mid-Nottinghamshire Better
//! Together, "Risk and Reward in place to manage transition risk") and capitated budgets,
//! and a finance director must be able to show each partner what a given outturn means for
//! them before signing.
//!
//! The rule (the usual gain-share / pain-share of alliance contracts, with limits; see
//! `docs/finance.md` for the sources):
//! 1. the variance is `planned − actual` (positive = saving, a gain; negative = overspend);
//! 2. the part shared by the partners is the variance limited to `[−collar, cap]` — the cap
//!    bounds the partners' total gain, the collar their total loss;
//! 3. each partner's settlement is its share of that shared amount, further limited by its
//!    own `cap` / `collar` if it has one (e.g. a small provider that cannot carry much risk);
//! 4. whatever is not shared — gain above the cap, loss beyond the collar, and anything a
//!    partner's own limit cuts off — stays with the commissioner (`commissioner`), so the
//!    settlements plus the commissioner's part always equal the variance.
//!
//! Pure: no I/O beyond [`Alliance::load`]; the caller supplies planned and actual cost.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::FinanceError;
use crate::plan::SHARE_TOLERANCE;

/// An alliance agreement and one period's outturn (`[alliance]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alliance {
    /// Display name.
    pub name: String,
    /// Planned (budgeted) cost of the pathway for the period, £m.
    pub planned_cost: f64,
    /// Actual cost, £m.
    pub actual_cost: f64,
    /// Largest total gain the partners share, £m (gain above it stays with the commissioner).
    pub cap: f64,
    /// Largest total loss the partners share, £m, as a positive number.
    pub collar: f64,
    /// The partners and their shares (summing to 1).
    pub partners: Vec<Partner>,
}

/// A partner in an alliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    /// Identifier.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Share of the shared gain or loss.
    pub share: f64,
    /// This partner's own limit on its gain, £m (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    /// This partner's own limit on its loss, £m, positive (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collar: Option<f64>,
}

/// One partner's settlement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartnerSettlement {
    /// Partner id.
    pub id: String,
    /// Partner name.
    pub name: String,
    /// Its share.
    pub share: f64,
    /// Its share of the whole variance, before any limit.
    pub unlimited: f64,
    /// What it receives (positive) or pays (negative).
    pub settlement: f64,
    /// Whether a cap or collar changed its settlement.
    pub limited: bool,
}

/// The settlement of an alliance for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settlement {
    /// Alliance name.
    pub name: String,
    /// planned − actual.
    pub variance: f64,
    /// The variance limited to [−collar, cap].
    pub shared: f64,
    /// Per partner.
    pub partners: Vec<PartnerSettlement>,
    /// What the commissioner keeps (positive) or bears (negative): variance − Σ settlements.
    pub commissioner: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllianceFile {
    alliance: Alliance,
}

impl Alliance {
    /// Read an alliance file (a TOML file with one `[alliance]` table) and validate it.
    pub fn load(path: &Path) -> Result<Alliance, FinanceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| FinanceError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Alliance::from_toml_str(&text, &file)
    }

    /// Parse and validate alliance text (`[alliance]` table); `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Alliance, FinanceError> {
        let parsed: AllianceFile = toml::from_str(text).map_err(|e| FinanceError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        parsed.alliance.validate(file)?;
        Ok(parsed.alliance)
    }

    /// Check shares, limits and costs; `file` names the source in errors.
    pub fn validate(&self, file: &str) -> Result<(), FinanceError> {
        let err =
            |k: String, v: &dyn std::fmt::Debug, p: &str| FinanceError::invalid(file, k, v, p);
        for (k, v) in [
            ("alliance.planned_cost", self.planned_cost),
            ("alliance.actual_cost", self.actual_cost),
            ("alliance.cap", self.cap),
            ("alliance.collar", self.collar),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(err(k.into(), &v, "must be a finite number, not negative"));
            }
        }
        if self.partners.is_empty() {
            return Err(err(
                "alliance.partners".into(),
                &"(none)",
                "an alliance needs at least one partner",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut sum = 0.0;
        for p in &self.partners {
            let k = format!("alliance.partners[{}]", p.id);
            if !seen.insert(p.id.as_str()) {
                return Err(err(format!("{k}.id"), &p.id, "duplicate partner id"));
            }
            if !p.share.is_finite() || !(0.0..=1.0).contains(&p.share) {
                return Err(err(
                    format!("{k}.share"),
                    &p.share,
                    "a share is a fraction in [0, 1]",
                ));
            }
            for (name, v) in [("cap", p.cap), ("collar", p.collar)] {
                if let Some(v) = v
                    && (!v.is_finite() || v < 0.0)
                {
                    return Err(err(
                        format!("{k}.{name}"),
                        &v,
                        "must be a finite number, not negative",
                    ));
                }
            }
            sum += p.share;
        }
        if (sum - 1.0).abs() > SHARE_TOLERANCE {
            let shares: Vec<f64> = self.partners.iter().map(|p| p.share).collect();
            return Err(err(
                "alliance.partners[*].share".into(),
                &shares,
                &format!(
                    "partners' shares must sum to 1, they sum to {}",
                    crate::plan::tidy(sum)
                ),
            ));
        }
        Ok(())
    }

    /// Settle the period (see the module documentation for the rule).
    pub fn settle(&self) -> Settlement {
        let variance = self.planned_cost - self.actual_cost;
        let shared = variance.clamp(-self.collar, self.cap);
        let partners: Vec<PartnerSettlement> = self
            .partners
            .iter()
            .map(|p| {
                let own = p.share * shared;
                let hi = p.cap.unwrap_or(f64::INFINITY);
                let lo = -p.collar.unwrap_or(f64::INFINITY);
                let settlement = own.clamp(lo, hi);
                let unlimited = p.share * variance;
                PartnerSettlement {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    share: p.share,
                    unlimited,
                    settlement,
                    limited: (settlement - unlimited).abs() > 1e-12,
                }
            })
            .collect();
        let paid: f64 = partners.iter().map(|p| p.settlement).sum();
        Settlement {
            name: self.name.clone(),
            variance,
            shared,
            partners,
            commissioner: variance - paid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alliance(planned: f64, actual: f64) -> Alliance {
        Alliance {
            name: "test".into(),
            planned_cost: planned,
            actual_cost: actual,
            cap: 4.0,
            collar: 2.0,
            partners: vec![
                Partner {
                    id: "a".into(),
                    name: "A".into(),
                    share: 0.5,
                    cap: None,
                    collar: None,
                },
                Partner {
                    id: "b".into(),
                    name: "B".into(),
                    share: 0.3,
                    cap: None,
                    collar: Some(0.3),
                },
                Partner {
                    id: "c".into(),
                    name: "C".into(),
                    share: 0.2,
                    cap: None,
                    collar: None,
                },
            ],
        }
    }

    #[test]
    fn gain_within_cap_is_shared_by_share() {
        let s = alliance(100.0, 97.0).settle();
        assert_eq!(s.variance, 3.0);
        assert_eq!(s.shared, 3.0);
        let v: Vec<f64> = s.partners.iter().map(|p| p.settlement).collect();
        assert!(
            (v[0] - 1.5).abs() < 1e-12 && (v[1] - 0.9).abs() < 1e-12 && (v[2] - 0.6).abs() < 1e-12
        );
        assert!(s.commissioner.abs() < 1e-12);
    }

    #[test]
    fn gain_above_cap_stays_with_commissioner() {
        let s = alliance(100.0, 90.0).settle();
        assert_eq!(s.shared, 4.0);
        assert!((s.partners[0].settlement - 2.0).abs() < 1e-12);
        assert!((s.commissioner - 6.0).abs() < 1e-12);
        assert!(s.partners.iter().all(|p| p.limited));
    }

    #[test]
    fn loss_beyond_collar_and_partner_limit() {
        let s = alliance(100.0, 105.0).settle();
        assert_eq!(s.shared, -2.0);
        // b's share of the collar is 0.6 but its own collar is 0.3.
        assert!((s.partners[1].settlement + 0.3).abs() < 1e-12);
        assert!((s.partners[0].settlement + 1.0).abs() < 1e-12);
        let paid: f64 = s.partners.iter().map(|p| p.settlement).sum();
        assert!((paid + s.commissioner - s.variance).abs() < 1e-12);
        assert!((s.commissioner + 3.3).abs() < 1e-12);
    }

    #[test]
    fn conservation_and_limits_hold_for_any_outturn() {
        let mut rng = trent_stats::rng::Rng::stream(11, 0);
        for _ in 0..2000 {
            let mut a = alliance(100.0, rng.uniform(80.0, 120.0));
            a.cap = rng.uniform(0.0, 10.0);
            a.collar = rng.uniform(0.0, 10.0);
            let s = a.settle();
            let paid: f64 = s.partners.iter().map(|p| p.settlement).sum();
            assert!((paid + s.commissioner - s.variance).abs() < 1e-9);
            assert!(paid <= a.cap + 1e-9 && paid >= -a.collar - 1e-9);
            for (p, ps) in a.partners.iter().zip(&s.partners) {
                assert!(ps.settlement <= p.share * a.cap + 1e-9);
                assert!(ps.settlement >= -p.share * a.collar - 1e-9);
                // Sign follows the variance.
                assert!(ps.settlement * s.variance >= 0.0);
            }
        }
    }

    #[test]
    fn bad_shares_are_refused() {
        let mut a = alliance(1.0, 1.0);
        a.partners[0].share = 0.6;
        let e = a.validate("x.toml").unwrap_err().to_string();
        assert!(
            e.contains("x.toml") && e.contains("share") && e.contains("1.1"),
            "{e}"
        );
    }
}
