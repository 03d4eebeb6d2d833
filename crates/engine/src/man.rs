//! The engine's manual page (roff, man(7) macros), written from the same
//! table as `--help`, so the two never disagree. `NAME --man-page` prints
//! it; install.sh and the Debian package install it as NAME(1).
//!
//! Owns only the formatting: escaping text for roff (a backslash, and a
//! line starting with `.` or `'`, mean something to it) and the page's
//! sections.

use crate::options::{Spec, COMMON};

/// The page for `spec`.
pub fn man_page(spec: &Spec) -> String {
    let mut out = String::new();
    let upper = spec.name.to_uppercase();
    out.push_str(&format!(
        ".TH {upper} 1 \"\" \"{} {}\" \"Jawas engines\"\n",
        spec.name, spec.version
    ));
    // The first clause of the description: NAME lines are one-liners.
    let first = spec
        .about
        .split([':', '(', ';'])
        .next()
        .unwrap_or("")
        .split(". ")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str(&format!(
        ".SH NAME\n{} \\- {}\n",
        escape(spec.name),
        escape(first.trim_end_matches('.'))
    ));
    out.push_str(".SH SYNOPSIS\n");
    for usage in spec.usage {
        out.push_str(&format!(
            ".B {}\n[\\fIOPTION\\fR]... {}\n.br\n",
            escape(spec.name),
            escape(usage)
        ));
    }
    out.push_str(".SH DESCRIPTION\n");
    for para in spec.about.split("\n\n") {
        let text = para.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!(".PP\n{}\n", escape(&text)));
    }
    out.push_str(".SH OPTIONS\n");
    for opt in spec.options.iter().chain(COMMON) {
        let mut head = format!("\\fB\\-\\-{}\\fR", escape(opt.long));
        if let Some(short) = opt.short {
            head = format!("\\fB\\-{short}\\fR, {head}");
        }
        if let Some(v) = opt.value {
            head.push_str(&format!(" \\fI{}\\fR", escape(v)));
        }
        let help = opt.help.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!(".TP\n{head}\n{}\n", escape(&help)));
    }
    out.push_str(
        ".SH EXIT STATUS\n\
         .TP\n0\ndone\n\
         .TP\n1\nthe peer broke the protocol or went away\n\
         .TP\n100\nusage or configuration error\n\
         .TP\n111\ntemporary system failure\n\
         .SH SEE ALSO\n\
         .BR jawasd (8),\n.BR jawasd.toml (5)\n",
    );
    out
}

/// Text safe in a roff line: backslashes doubled, dashes literal, and a
/// line never starting with a control character.
fn escape(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Opt;

    #[test]
    fn the_page_has_every_option_and_escapes_roff() {
        const OPTS: &[Opt] = &[Opt::value("root", "DIR", "Serve DIR.\\n.")];
        let spec = Spec {
            name: "jawas-x",
            version: "1.0",
            usage: &["--root DIR"],
            about: "Serves files. More text.\n\n.starts with a dot",
            options: OPTS,
        };
        let page = man_page(&spec);
        assert!(page.starts_with(".TH JAWAS-X 1 "), "{page}");
        assert!(
            page.contains(".SH NAME\njawas\\-x \\- Serves files\n"),
            "{page}"
        );
        assert!(
            page.contains("\\fB\\-\\-root\\fR \\fIDIR\\fR\nServe DIR.\\en.\n"),
            "{page}"
        );
        assert!(page.contains("\\fB\\-h\\fR, \\fB\\-\\-help\\fR"), "{page}");
        assert!(page.contains(".PP\n\\&.starts with a dot\n"), "{page}");
        // No line but a known macro starts with a dot.
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix('.') {
                let mac = rest.split_whitespace().next().unwrap_or("");
                assert!(
                    ["TH", "SH", "B", "BR", "br", "PP", "TP"].contains(&mac),
                    "{line}"
                );
            }
        }
    }
}
