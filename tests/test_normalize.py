"""Normalization: what a reader sees becomes clauses, and nothing else does."""

import pytest

from tests.conftest import target_toml
from watcher.models import render_document
from watcher.normalize import NormalizeError, Selection, html_to_clauses


def clauses(html, **selection):
    return html_to_clauses(html, Selection(**{k: tuple(v) for k, v in selection.items()}))


def texts(html, **selection):
    return [c.text for c in clauses(html, **selection)]


def test_blocks_become_clauses_with_their_heading_path():
    doc = clauses("""<main>
      <h1>Privacy Policy</h1>
      <h2>1. Data we collect</h2><p>Your e-mail address.</p>
      <h3>1.1 Logs</h3><p>Your IP address.</p>
      <h2>2. Retention</h2><p>We keep data for one year.</p></main>""")
    assert [(c.kind, c.text, c.section) for c in doc] == [
        ("heading", "Privacy Policy", ()),
        ("heading", "1. Data we collect", ("Privacy Policy",)),
        ("paragraph", "Your e-mail address.", ("Privacy Policy", "1. Data we collect")),
        ("heading", "1.1 Logs", ("Privacy Policy", "1. Data we collect")),
        ("paragraph", "Your IP address.", ("Privacy Policy", "1. Data we collect", "1.1 Logs")),
        ("heading", "2. Retention", ("Privacy Policy",)),
        ("paragraph", "We keep data for one year.", ("Privacy Policy", "2. Retention")),
    ]


def test_inline_tags_never_split_words():
    assert texts("<p>We do <b>not</b> sell your da<span>ta</span>, e<i>ver</i>.</p>") == [
        "We do not sell your data, ever."]


def test_nested_lists_give_one_clause_per_item_with_depth():
    doc = clauses("""<ul><li>Account data<ul><li>name</li><li>e-mail</li></ul></li>
                     <li>Usage data</li></ul>""")
    assert [(c.kind, c.level, c.text) for c in doc] == [
        ("item", 1, "Account data"), ("item", 2, "name"), ("item", 2, "e-mail"),
        ("item", 1, "Usage data")]


def test_table_rows_are_records_keyed_by_first_cell():
    doc = clauses("""<h2>Sub-processors</h2><table>
      <tr><th>Name</th><th>Purpose</th><th>Location</th></tr>
      <tr><td><a href="https://x">Cloud<b>flare</b></a></td><td>Security</td><td>United States</td></tr>
      </table>""")
    rows = [c for c in doc if c.kind == "row"]
    assert [(r.text, r.key, r.section) for r in rows] == [
        ("Name | Purpose | Location", "Name", ("Sub-processors",)),
        ("Cloudflare | Security | United States", "Cloudflare", ("Sub-processors",))]


def test_bold_lead_in_paragraph_is_a_heading():
    doc = clauses("""<h2>2. Data</h2><p><strong>Payment information:</strong></p>
                     <ul><li>When you subscribe.</li></ul>
                     <p><strong>Input.</strong> What you type.</p>""")
    assert [(c.kind, c.text, c.section) for c in doc] == [
        ("heading", "2. Data", ()),
        ("heading", "Payment information:", ("2. Data",)),
        ("item", "When you subscribe.", ("2. Data", "Payment information:")),
        ("paragraph", "Input. What you type.", ("2. Data", "Payment information:")),
    ]


def test_whitespace_and_invisible_unicode_are_folded():
    html = "<p>Data\u00a0is\u200b kept\n\t for  thir\u00adty days\u202f.</p>"
    assert texts(html) == ["Data is kept for thirty days ."]


def test_scripts_styles_and_hidden_elements_are_dropped():
    html = """<main><script>var a = "secret";</script><style>p{}</style>
      <p hidden>Hidden</p><p style="display: none">Gone</p><div aria-label="x">Shown</div>
      <noscript>Enable JS</noscript><template><p>Tpl</p></template></main>"""
    assert texts(html) == ["Shown"]


def test_select_and_remove_isolate_the_document():
    html = """<body><nav>Menu</nav><div id="terms"><p>Terms text.</p>
      <div class="ad">Buy now</div></div><div id="privacy"><p>Privacy text.</p></div></body>"""
    assert texts(html, select=["#terms"], remove=[".ad"]) == ["Terms text."]
    assert texts(html, select=["#privacy", "#terms"], remove=[".ad"]) == [
        "Terms text.", "Privacy text."]


def test_without_select_main_content_is_found_without_chrome_or_cookie_banner():
    html = """<body><header>Logo</header><nav>Home | About</nav>
      <div class="cookie-banner"><p>We use cookies.</p><button>OK</button></div>
      <main><h1>Terms</h1><p>Be nice.</p><footer>Share this</footer></main>
      <footer>(c) 2025</footer></body>"""
    assert texts(html) == ["Terms", "Be nice."]
    banners = ('<div id="onetrust-banner-sdk"><p>We use cookies.</p><button>Accept</button></div>'
               '<div class="consent" style="position: fixed"><p>Choices.</p>'
               '<a role="button" href="#">Reject</a></div>'
               '<section class="gdpr-consent-modal"><p>Yours.</p><button>Agree</button></section>')
    assert texts(f"<body>{banners}<h1>Terms</h1><p>Be nice.</p></body>") == ["Terms", "Be nice."]


def test_cookie_policy_content_is_not_mistaken_for_a_banner():
    html = """<body><div id="cookie-policy"><h1>Cookie Policy</h1><p>We use cookies.</p>
      </div></body>"""
    assert texts(html) == ["Cookie Policy", "We use cookies."]


def test_selector_matching_nothing_is_an_error_not_an_empty_document():
    with pytest.raises(NormalizeError, match="matched nothing"):
        clauses("<p>Hello</p>", select=["#gone"])
    with pytest.raises(NormalizeError, match="no visible text"):
        clauses("<div id='x'><script>1</script></div>", select=["#x"])


def test_cloudflare_email_obfuscation_is_decoded():
    secret = "privacy@example.com"
    key = 0x42
    encoded = f"{key:02x}" + "".join(f"{ord(ch) ^ key:02x}" for ch in secret)
    html = (f'<p>Write to <a href="/cdn-cgi/l/email-protection#{encoded}">'
            f'<span class="__cf_email__" data-cfemail="{encoded}">[email&#160;protected]</span>'
            "</a>.</p>")
    assert texts(html) == [f"Write to {secret}."]


def test_same_visible_text_gives_identical_output_whatever_the_markup():
    plain = "<main><h2>Rights</h2><p>You may object.</p><ul><li>By e-mail</li></ul></main>"
    noisy = """<html><head><script src="/_next/static/chunks/app-9f8e7d.js"></script>
      <script id="__NEXT_DATA__" type="application/json">{"buildId":"abc123"}</script></head>
      <body class="theme-dark"><main data-build="20250213" class="css-1x2y3z">
      <h2 id="rights" class="title   big">Rights</h2>
      <p  style="color:red"   class="p-4">You <span class="x">may</span>
      object.</p><!-- build 42 --><ul class="list"><li data-i="1">By
      <em></em>e-mail</li></ul></main></body></html>"""
    assert render_document(clauses(plain)) == render_document(clauses(noisy))


def test_each_line_break_ends_a_clause():
    doc = clauses("<p><b>6.3 Deleting your account</b><br>You can delete it.<br><br>Any time.</p>")
    assert [(c.kind, c.text) for c in doc] == [
        ("heading", "6.3 Deleting your account"), ("paragraph", "You can delete it."),
        ("paragraph", "Any time.")]


def test_range_selectors_take_the_content_between_two_elements():
    from watcher.normalize import Range

    html = """<h1 id="t">Terms</h1><h2>Intro</h2><p>Skip me.</p><h2 id="c">Copilot</h2>
      <p>Copilot text.</p><h2>Other</h2><p>Skip me too.</p>"""
    selection = Selection(select=("#t", Range(start="#c", end="#c ~ h2")))
    assert [c.text for c in html_to_clauses(html, selection)] == [
        "Terms", "Copilot", "Copilot text."]
    after = Selection(select=(Range(start="#c", end="#c ~ h2", start_after=True,
                                    end_after=True),))
    assert [c.text for c in html_to_clauses(html, after)] == ["Copilot text.", "Other"]


def test_consent_and_gdpr_words_in_markup_never_delete_policy_text():
    html = """<body><main>
      <p>We process your data based on your <span class="consent">consent</span>.</p>
      <div id="gdpr-rights"><p>Under the GDPR you may object at any time.</p></div>
      <div class="consent-details"><h4>Withdrawing consent</h4>
        <p>You can withdraw your consent in your settings.</p></div>
      <div class="cookie-notice"><p>This Cookie Notice explains the cookies we use.</p></div>
      </main></body>"""
    assert texts(html) == [
        "We process your data based on your consent.", "Under the GDPR you may object at any time.",
        "Withdrawing consent", "You can withdraw your consent in your settings.",
        "This Cookie Notice explains the cookies we use."]


def test_control_characters_never_reach_clauses_or_the_terminal(project, site):
    url = site.set("/p", "<main><h2>Da\x01ta</h2><p>We keep\x1b]0;pwned\x07 chats"
                         "\x9b for\t30\x7f days.</p><p>\x1b[2J</p></main>")
    project.write_config(target_toml("p", url))
    project.run("check")
    shown = project.run("show", "p").output
    assert shown == "## Data\n\nWe keep]0;pwned chats for 30 days.\n\n[2J\n"


def test_a_block_inside_a_heading_is_the_heading():
    doc = clauses("<main><h2><div>3. Sharing</div></h2><p>We share with processors.</p>"
                  "<h3><span>3.1</span><div>Processors</div></h3><p>Listed below.</p></main>")
    assert [(c.kind, c.text, c.section) for c in doc] == [
        ("heading", "3. Sharing", ()),
        ("paragraph", "We share with processors.", ("3. Sharing",)),
        ("heading", "3.1 Processors", ("3. Sharing",)),
        ("paragraph", "Listed below.", ("3. Sharing", "3.1 Processors"))]


def test_ranges_and_css_selectors_give_the_document_in_page_order():
    from watcher.normalize import Range

    html = """<p id="intro">Intro</p><h2 id="start">Start</h2><p>Middle</p>
      <h2 id="end">End</h2><p id="outro">Outro</p>"""
    selection = Selection(select=("#intro", Range(start="#start", end="#end"), "#outro"))
    assert [c.text for c in html_to_clauses(html, selection)] == [
        "Intro", "Start", "Middle", "Outro"]
    reordered = Selection(select=("#outro", Range(start="#start", end="#end"), "#intro"))
    assert [c.text for c in html_to_clauses(html, reordered)] == [
        "Intro", "Start", "Middle", "Outro"]
