//! The content side of jawas-blog: reading sources (site.toml, front
//! matter, Markdown) and turning them into the files of the site.
//!
//! Owns the parsing and rendering modules; `crate::site` ties them
//! together behind the seam with the store.

pub mod config;
pub mod date;
pub mod front;
pub mod hash;
pub mod highlight;
pub mod markdown;
pub mod words;
