//! jawas-blog: a blog from a directory of Markdown posts.
//!
//! STATUS: skeleton. The store side owns this file.

#[allow(dead_code)] // STATUS: until the store side uses every part.
mod site;

mod ghost;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "import-ghost") {
        std::process::exit(ghost::main(&args[1..]));
    }
    let _ = site::Memo::none();
    let _ = site::Site::load;
    let _ = site::search;
    let _ = site::search_page;
    eprintln!("jawas-blog: not built yet");
    std::process::exit(100);
}
