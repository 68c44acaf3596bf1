"""The shop web app, served in-process (``context.route``): search, result pages, item pages with options and
Description / Features / Reviews sub-pages, and Buy Now, following WebShop's page flow.

Pages are plain HTML with no scripts. All browsing state (query, result page, chosen options) lives in the
URL, so a page is reproducible from its address; the only server-side state is the purchase.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from agentgym.envs.browser.network import Response
from agentgym.envs.web.shop.catalog import Product

ORIGIN = "http://shop.local"
RESULTS_PER_PAGE = 10
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class SearchIndex:
    """TF-IDF ranking over title, type, category and attributes; ties broken by ASIN (deterministic)."""

    def __init__(self, products: Sequence[Product]):
        self.products = list(products)
        self.docs = [Counter(tokens(" ".join([p.title, p.product_type, p.category, *p.attributes])))
                     for p in self.products]
        df = Counter(t for d in self.docs for t in d)
        self.idf = {t: math.log(1 + len(self.docs) / c) for t, c in df.items()}

    def search(self, query: str) -> list[Product]:
        q = set(tokens(query))
        scored = [(sum(self.idf[t] for t in q if t in d), p.asin, p) for d, p in zip(self.docs, self.products)]
        return [p for s, _, p in sorted(scored, key=lambda x: (-x[0], x[1])) if s > 0]


@dataclass
class Purchase:
    asin: str
    options: dict[str, str]


def _page(title: str, body: str) -> Response:
    return Response(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                    f"<body>{body}</body></html>")


def _link(href: str, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<a href="{html.escape(href)}"{extra}>{html.escape(text)}</a>'


class ShopApp:
    """One shop: the catalog, its search index, and the purchase of the current episode."""

    def __init__(self, products: Sequence[Product], index: SearchIndex):
        self.by_asin = {p.asin: p for p in products}
        self.index = index
        self.purchase: Purchase | None = None

    def __call__(self, method: str, url: str, body: str | None) -> Response:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        path = parts.path.rstrip("/") or "/"
        if path == "/":
            return self.home()
        if path == "/search":
            return self.results(query.get("q", ""), query.get("page", "1"))
        m = re.fullmatch(r"/(item|buy)/([A-Z0-9]+)(?:/(description|features|reviews))?", path)
        if m and m.group(2) in self.by_asin:
            product = self.by_asin[m.group(2)]
            if m.group(1) == "buy":
                return self.buy(product, query)
            return self.subpage(product, m.group(3), query) if m.group(3) else self.item(product, query)
        return Response(_page("Not found", "<h1>Page not found</h1>" + _link("/", "Back to Search")).body, status=404)

    def home(self) -> Response:
        return _page("Shop", '<h1>Shop</h1><form action="/search" method="get" role="search">'
                             '<input type="text" name="q" id="search_input" aria-label="Search" placeholder="Search">'
                             '<button type="submit" id="search_btn">Search</button></form>')

    def results(self, q: str, page_text: str) -> Response:
        hits = self.index.search(q)
        pages = max(1, math.ceil(len(hits) / RESULTS_PER_PAGE))
        page = min(max(1, int(page_text) if re.fullmatch(r"[0-9]{1,6}", page_text or "") else 1), pages)
        nav = [_link("/", "Back to Search", id="back_to_search")]
        if page > 1:
            nav.append(_link("/search?" + urlencode({"q": q, "page": page - 1}), "< Prev", id="prev"))
        if page < pages:
            nav.append(_link("/search?" + urlencode({"q": q, "page": page + 1}), "Next >", id="next"))
        rows = []
        for p in hits[(page - 1) * RESULTS_PER_PAGE: page * RESULTS_PER_PAGE]:
            href = f"/item/{p.asin}?" + urlencode({"q": q, "page": page})
            rows.append(f"<li>{_link(href, p.asin, data_asin=p.asin)} <span>{html.escape(p.title)}</span> "
                        f"<span>${p.price:.2f}</span></li>")
        body = (f"<p>{' '.join(nav)}</p><h2>Page {page} (Total results: {len(hits)})</h2>"
                f"<ul>{''.join(rows) or '<li>No results.</li>'}</ul>")
        return _page(f"Results for {q}", body)

    def _state(self, product: Product, query: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        nav = {k: query[k] for k in ("q", "page") if k in query}
        chosen = {d: query[d] for d in product.options if query.get(d) in product.options[d]}
        return nav, chosen

    def item(self, product: Product, query: dict[str, str]) -> Response:
        nav, chosen = self._state(product, query)
        back = "/search?" + urlencode(nav) if "q" in nav else "/"
        groups = []
        for dim, values in product.options.items():
            links = []
            for v in values:
                href = f"/item/{product.asin}?" + urlencode({**nav, **chosen, dim: v})
                mark = " (selected)" if chosen.get(dim) == v else ""
                links.append(_link(href, v, data_option=dim, data_value=v) + html.escape(mark))
            groups.append(f"<p>{html.escape(dim)}: {' '.join(links)}</p>")
        keep = urlencode({**nav, **chosen})
        subs = " ".join(_link(f"/item/{product.asin}/{s}?{keep}", s.capitalize()) for s in
                        ("description", "features", "reviews"))
        body = (f"<p>{_link('/', 'Back to Search', id='back_to_search')} {_link(back, '< Prev', id='prev')}</p>"
                f"<h1>{html.escape(product.title)}</h1><p>Price: ${product.price:.2f}</p>{''.join(groups)}"
                f"<p>{subs}</p><p>{_link(f'/buy/{product.asin}?{keep}', 'Buy Now', id='buy_now')}</p>")
        return _page(product.title, body)

    def subpage(self, product: Product, which: str, query: dict[str, str]) -> Response:
        nav, chosen = self._state(product, query)
        content = {"description": f"<p>{html.escape(product.description)}</p>",
                   "features": "<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in product.features) + "</ul>",
                   "reviews": "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in product.reviews) + "</ul>"}[which]
        back = f"/item/{product.asin}?" + urlencode({**nav, **chosen})
        return _page(f"{which} - {product.title}",
                     f"<p>{_link(back, '< Prev', id='prev')}</p><h2>{which.capitalize()}</h2>{content}")

    def buy(self, product: Product, query: dict[str, str]) -> Response:
        _, chosen = self._state(product, query)
        if self.purchase is None:  # the first purchase of an episode counts
            self.purchase = Purchase(product.asin, chosen)
        return _page("Thank you", f"<h1>Thank you for shopping with us!</h1><p>You bought {html.escape(product.title)}"
                                  f"{' (' + html.escape(', '.join(f'{k}: {v}' for k, v in chosen.items())) + ')' if chosen else ''}.</p>")
