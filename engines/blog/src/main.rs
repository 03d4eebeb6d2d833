//! jawas-blog: a blog from a directory of Markdown posts.
//!
//! STATUS: skeleton. The store side owns this file.

#[allow(dead_code)] // STATUS: until the store side uses every part.
mod site;

fn main() {
    let _ = site::Memo::none();
    let _ = site::Site::load;
    let _ = site::search;
    let _ = site::search_page;
    eprintln!("jawas-blog: not built yet");
    std::process::exit(100);
}
