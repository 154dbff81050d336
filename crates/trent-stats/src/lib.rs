//! Statistics every trent engine shares, kept free of heavy dependencies so the
//! generator, the Observatory and the financial model use one implementation:
//!
//! - `rng`: a fixed, value-stable random number generator (same seed, same numbers
//!   across releases), with the distributions the simulations need;
//! - `stats`: the European Standard Population 2013, directly standardised rates, life
//!   tables and healthy life expectancy (Sullivan), and small numeric helpers;
//! - `methods`: the OHID/PHE Technical Guide methods indicators are published with
//!   (Wilson, Byar, Dobson, ISR, Chiang/Silcocks life expectancy, Sullivan HLE, SII,
//!   funnel limits), matched to PHEindicatormethods and PHStatsMethods;
//! - `spc`: NHS England "Making Data Count" XmR charts, as NHSRplotthedots draws them;
//! - `file`: the same methods on an analyst's CSV file (`trent stats`).

pub mod file;
pub mod methods;
pub mod rng;
pub mod spc;
pub mod stats;
