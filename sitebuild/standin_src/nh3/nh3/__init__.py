"""Stand-in for nh3 (a Rust extension: no registry serves a wasm build of it), for tinyrnn's site.

The site (the one GitHub Pages publishes and the browser tests drive) carries this instead of the compiled nh3 of
the official Pyodide distribution (docs/deploy.md). Panel calls ``nh3.clean`` on every string it sends for a
ReactiveHTML component (templates use them), so a stand-in must sanitize. This one delegates to bleach (in the
official Pyodide distribution) with an allow-list modelled on ammonia's defaults (the nh3 defaults Panel uses).
Options it does not implement raise ``NotImplementedError`` instead of being ignored.
"""
import html as _html
import re as _re
from html.parser import HTMLParser as _HTMLParser

__version__ = "0.2.17+standin"

# Text that neither ammonia (nh3) nor bleach changes: no markup or entity characters, no no-break space, no control
# character but tab and newline. Panel cleans every string it sends for a template's ReactiveHTML parts (names, CSS
# classes, titles): those take this path, without importing bleach (~0.15 s at page start-up in Pyodide).
_PLAIN = _re.compile(r"[^<>&\x00-\x08\x0b-\x1f\x7f\xa0]*")

ALLOWED_TAGS = {
    "a", "abbr", "acronym", "area", "article", "aside", "b", "bdi", "bdo", "blockquote", "br", "caption", "center",
    "cite", "code", "col", "colgroup", "data", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins", "kbd",
    "li", "map", "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "time", "tr", "tt", "u",
    "ul", "var", "wbr",
}
ALLOWED_ATTRIBUTES = {
    "*": {"lang", "title"},
    "a": {"href", "hreflang"}, "bdo": {"dir"}, "blockquote": {"cite"},
    "col": {"align", "char", "charoff", "span"}, "colgroup": {"align", "char", "charoff", "span"},
    "del": {"cite", "datetime"}, "hr": {"align", "size", "width"},
    "img": {"align", "alt", "height", "src", "width"}, "ins": {"cite", "datetime"}, "ol": {"start"},
    "q": {"cite"}, "table": {"align", "char", "charoff", "summary"},
    "tbody": {"align", "char", "charoff"}, "td": {"align", "char", "charoff", "colspan", "headers", "rowspan"},
    "tfoot": {"align", "char", "charoff"}, "th": {"align", "char", "charoff", "colspan", "headers", "rowspan", "scope"},
    "thead": {"align", "char", "charoff"}, "tr": {"align", "char", "charoff"},
}
URL_SCHEMES = {
    "bitcoin", "ftp", "ftps", "geo", "http", "https", "im", "irc", "ircs", "magnet", "mailto", "mms", "mx", "news",
    "nntp", "openpgp4fpr", "sip", "sms", "smsto", "ssh", "tel", "url", "webcal", "wtai", "xmpp",
}


def clean(html, tags=None, clean_content_tags=None, attributes=None, attribute_filter=None, strip_comments=True,
          link_rel="noopener noreferrer", generic_attribute_prefixes=None, tag_attribute_values=None,
          set_tag_attribute_values=None, url_schemes=None, allowed_classes=None, filter_style_properties=None):
    unsupported = dict(clean_content_tags=clean_content_tags, attribute_filter=attribute_filter,
                       generic_attribute_prefixes=generic_attribute_prefixes,
                       tag_attribute_values=tag_attribute_values, set_tag_attribute_values=set_tag_attribute_values,
                       allowed_classes=allowed_classes, filter_style_properties=filter_style_properties)
    used = [k for k, v in unsupported.items() if v is not None]
    if used:
        raise NotImplementedError(f"nh3 stand-in: option(s) {used} are not implemented")
    if _PLAIN.fullmatch(html):
        return html
    import bleach as _bleach

    attrs = {k: sorted(v) for k, v in (ALLOWED_ATTRIBUTES if attributes is None else attributes).items()}
    out = _bleach.clean(html, tags=set(ALLOWED_TAGS if tags is None else tags), attributes=attrs,
                        protocols=set(URL_SCHEMES if url_schemes is None else url_schemes), strip=True,
                        strip_comments=strip_comments)
    # link_rel: ammonia adds rel="noopener noreferrer" to links; without an allowed `target` attribute a link
    # cannot open a new browsing context, so there is nothing for rel to protect here.
    return out


def clean_text(html):
    return _html.escape(html, quote=True)


class _TagFinder(_HTMLParser):
    found = False

    def handle_starttag(self, tag, attrs):
        self.found = True

    def handle_endtag(self, tag):
        self.found = True


def is_html(html):
    finder = _TagFinder()
    finder.feed(html)
    finder.close()
    return finder.found
