//! Statistics every trent engine shares, kept free of heavy dependencies so the
//! generator, the Observatory and the financial model use one implementation:
//!
//! - `rng`: a fixed, value-stable random number generator (same seed, same numbers
//!   across releases), with the distributions the simulations need;
//! - `stats`: the European Standard Population 2013, directly standardised rates, life
//!   tables and healthy life expectancy (Sullivan), and small numeric helpers.

pub mod rng;
pub mod stats;
