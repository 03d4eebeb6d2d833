//! The content side of jawas-blog: reading sources (site.toml, front
//! matter, Markdown) and turning them into the files of the site.
//!
//! Owns the parsing and rendering modules; `crate::site` ties them
//! together behind the seam with the store.

pub mod check;
pub mod config;
pub mod date;
pub mod front;
pub mod hash;
pub mod highlight;
pub mod markdown;
pub mod memo;
pub mod plan;
pub mod render;
pub mod search;
pub mod words;

/// Hash of the theme assets compiled in, for the keys of
/// `theme/style.css` and `theme/highlight.css`.
pub fn theme_assets_hash() -> u128 {
    hash::of(crate::site::theme::STYLE.as_bytes())
}

#[cfg(test)]
mod site_tests;
