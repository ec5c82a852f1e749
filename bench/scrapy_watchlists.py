#!/usr/bin/python3
"""A Scrapy crawl of the same watchlist pages filmpicker fetches, for the cold
benchmark's comparison: page 1 of each user, the page count from its
pagination, then pages 2..N, at a given per-domain concurrency.
usage: scrapy_watchlists.py BASE_URL CONCURRENCY USER...
"""
import sys
import time

import scrapy
from scrapy.crawler import CrawlerProcess


class Watchlists(scrapy.Spider):
    name = "watchlists"

    def __init__(self, base, users, **kw):
        super().__init__(**kw)
        self.base = base.rstrip("/")
        self.users = users
        self.films = 0

    def start_requests(self):
        self.t0 = time.monotonic()
        for u in self.users:
            yield scrapy.Request("%s/%s/watchlist/" % (self.base, u), cb_kwargs={"user": u})

    def parse(self, response, user):
        self.films += len(response.css("div.react-component[data-item-slug], div.film-poster"))
        pages = [int(p) for p in response.css(".paginate-pages a::text").getall() if p.isdigit()]
        for n in range(2, max(pages, default=1) + 1):
            yield scrapy.Request("%s/%s/watchlist/page/%d/" % (self.base, user, n),
                                 callback=self.parse_page)

    def parse_page(self, response):
        self.films += len(response.css("div.react-component[data-item-slug], div.film-poster"))

    def closed(self, reason):
        print("crawl %.3f s, films %d" % (time.monotonic() - self.t0, self.films), flush=True)


def main():
    base, conc, users = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    proc = CrawlerProcess(settings={
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": conc,
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    proc.crawl(Watchlists, base=base, users=users)
    proc.start()


if __name__ == "__main__":
    main()
