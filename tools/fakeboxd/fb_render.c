/*
 * fb_render.c - fakeboxd's page templates.
 *
 * The templates copy the structure, class names, attribute order, entity
 * spelling and whitespace habits of the real server HTML (the fixtures named
 * in fb_render.h), trimmed of the parts no scraper reads (most inline
 * scripts, modals, ads). Noise that real pages carry and that a careless
 * parser trips over is kept on purpose: a non-poster react-component in the
 * site header, a "poster-list" figure in the diary modal, the sidebar.
 * Usernames are [A-Za-z0-9_] (fb_user_parse) so they go out verbatim;
 * every film text goes through fb_buf_put_html.
 */
#include "fb_render.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FB__TRY(expr)            \
    do {                         \
        err = (expr);            \
        if (err != FB_OK)        \
            goto out;            \
    } while (0)

#define FB__EMPTY_POSTER "https://s.ltrbxd.com/static/img/empty-poster-125-AiuBHVCI.png"

fb_err fb_markup_parse(const char *name, fb_markup *out)
{
    if (strcmp(name, "classic") == 0)
        *out = FB_MARKUP_CLASSIC;
    else if (strcmp(name, "react2025") == 0)
        *out = FB_MARKUP_REACT2025;
    else if (strcmp(name, "react2026") == 0)
        *out = FB_MARKUP_REACT2026;
    else
        return FB_INVALID;
    return FB_OK;
}

/* "12,345": how Letterboxd prints counts in text. */
static fb_err fb__put_count(fb_buf *o, size_t n)
{
    char digits[32];
    char grouped[48];
    int len = snprintf(digits, sizeof(digits), "%zu", n);
    size_t g = 0;

    if (len <= 0 || (size_t)len >= sizeof(digits))
        return FB_INVALID;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            grouped[g++] = ',';
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    return fb_buf_puts(o, grouped);
}

/* Link to page p of the watchlist: page 1 is the bare watchlist URL. */
static fb_err fb__put_page_href(fb_buf *o, const char *user, long p)
{
    if (p <= 1)
        return fb_buf_appendf(o, "/%s/watchlist/", user);
    return fb_buf_appendf(o, "/%s/watchlist/page/%ld/", user, p);
}

static fb_err fb__head(fb_buf *o, const fb_page_view *v)
{
    fb_err err = FB_OK;
    const char *u = v->user->name;

    FB__TRY(fb_buf_puts(o,
        "\n\n<!DOCTYPE html>\n\n"
        "<html id=\"html\" lang=\"en\" class=\"context-client-unknown no-mobile no-js\">\n"
        "<head>\n"
        "\t<meta charset=\"UTF-8\" />\n\n"
        "\t<meta name=\"viewport\" content=\"width=1024\" />\n"
        "\t<meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge,chrome=1\" />\n"));
    FB__TRY(fb_buf_appendf(o, "\t<meta name=\"description\" content=\"%s\xE2\x80\x99s Watchlist\" />\n\n", u));
    FB__TRY(fb_buf_puts(o, "\t<meta property=\"og:url\" content=\"https://letterboxd.com"));
    FB__TRY(fb__put_page_href(o, u, v->page));
    FB__TRY(fb_buf_puts(o, "\" />\n"));
    FB__TRY(fb_buf_appendf(o,
        "\t<meta property=\"og:title\" content=\"%s\xE2\x80\x99s Watchlist\" />\n"
        "\t<meta property=\"og:description\" content=\"%s\xE2\x80\x99s Watchlist\" />\n"
        "\t<meta property=\"og:image\" content=\"https://s.ltrbxd.com/static/img/default-share-7md9L34t.png\" />\n"
        "\t<meta name=\"application-name\" content=\"Letterboxd\" />\n"
        "\t<meta name=\"theme-color\" content=\"#14181C\" />\n\n"
        "\t<title>&lrm;%s\xE2\x80\x99s Watchlist &bull; Letterboxd</title>\n",
        u, u, u));
    FB__TRY(fb_buf_puts(o,
        "\t<script>\n"
        "\t\tvar isMobile = false,\n"
        "\t\t\tbaseURL = '',\n"
        "\t\t\tstaticAssetBaseURL = 'https://s.ltrbxd.com/'.slice(0, -1),\n"
        "\t\t\tsupermodelCSRF = \"\",\n"
        "\t\t\tperson = {\n"
        "\t\t\t\tusername: \"\"\n"
        "\t\t\t\t, loggedIn: false\n"
        "\t\t\t\t, role: \"guest\"\n"
        "\t\t\t},\n"
        "\t\t\tdisableAds = false,\n"
        "\t\t\tanalytic_params = {};\n"
        "\t\tanalytic_params['template'] = '/object/watchlist';\n"
        "\t</script>\n"
        "\t<link rel=\"manifest\" href=\"/manifest.json\" />\n"
        "\t<link rel=\"shortcut icon\" href=\"/favicon.ico\" />\n"
        "\t<link rel=\"stylesheet\" href=\"https://s.ltrbxd.com/static/css/main-Cz0nA0Ee.css\" />\n"
        "</head>\n"));
out:
    return err;
}

static fb_err fb__site_header(fb_buf *o, const fb_page_view *v)
{
    fb_err err = FB_OK;
    const char *body_class = v->markup == FB_MARKUP_CLASSIC
                                 ? "watchlist wide"
                                 : "screen-member-child-page watchlist wide";

    FB__TRY(fb_buf_appendf(o, "<body class=\"%s\" data-owner=\"%s\">\n\n\n", body_class,
                           v->user->name));
    FB__TRY(fb_buf_puts(o,
        "<header class=\"site-header js-hide-in-app\" id=\"header\" data-allow-user-to-add-all-films-to-a-list=\"true\">\n"
        "\t<div class=\"site-header-bg\"></div>\n"
        "\t<section>\n"
        "\t\t<h1 class=\"site-logo\"><a href=\"/\" class=\"logo replace\">Letterboxd &mdash; Your life in film</a></h1>\n\n"
        "\t\t<div class=\"react-component\" data-component-class=\"globals.comps.NavComponent\"></div>\n\n"
        "\t\t<nav class=\"main-nav\"> <ul class=\"navitems\">"
        " <li class=\"navitem sign-in-menu\"><a class=\"navlink\" href=\"/sign-in/\"><span class=\"label\">Sign in</span></a></li>"
        " <li class=\"navitem create-account-menu\"><a class=\"navlink\" href=\"/create-account/\"><span class=\"label\">Create account</span></a></li>"
        " <li class=\"navitem films-page\"><a class=\"navlink\" href=\"/films/\"><span class=\"label\">Films</span></a></li>"
        " <li class=\"navitem\"><a class=\"navlink\" href=\"/lists/\"><span class=\"label\">Lists</span></a></li>"
        " <li class=\"navitem\"><a class=\"navlink\" href=\"/members/\"><span class=\"label\">Members</span></a></li>"
        " <li class=\"navitem\"><a class=\"navlink\" href=\"/journal/\"><span class=\"label\">Journal</span></a></li>"
        " </ul> </nav>\n"
        "\t</section>\n"
        "</header>\n\n"
        /* The diary modal's preview: a poster-list that is not the grid. */
        "<div class=\"modal js-diary-entry-modal\" hidden>\n"
        "\t<aside class=\"figure\">\n"
        "\t\t<figure class=\"poster-list -p150 no-hover js-poster-preview\">\n"
        "\t\t\t<div class=\"poster no-poster\">\n"
        "\t\t\t\t<span class=\"frame\"></span>\n"
        "\t\t\t</div>\n"
        "\t\t</figure>\n"
        "\t</aside>\n"
        "</div>\n\n"));
out:
    return err;
}

static fb_err fb__profile_header(fb_buf *o, const char *u)
{
    return fb_buf_appendf(o,
        "<div id=\"content\" class=\"site-body\">\n"
        "\t\t<div class=\"content-wrap\">\n\n"
        "<section class=\"profile-header js-profile-header -is-mini-nav\" data-person=\"%s\">\n"
        "\t<nav class=\"profile-navigation\">\n"
        "\t\t\t<div class=\"profile-mini-person\">\n"
        "\t\t\t\t<a class=\"avatar -a24\" href=\"/%s/\" > <img src=\"https://s.ltrbxd.com/static/img/avatar24-DDLE5nRx.png\" alt=\"%s\" width=\"24\" height=\"24\" /> </a>\n"
        "\t\t\t\t<h1 class=\"title-3\"><a href=\"/%s/\">%s</a></h1>\n"
        "\t\t\t</div>\n"
        "\t\t\t<ul class=\"navlist\">\n"
        "\t\t\t\t<li data-owner=\"%s\" class=\"navitem js-page-films\"><a class=\"navlink\" href=\"/%s/films/\">Films</a></li>\n"
        "\t\t\t\t<li data-owner=\"%s\" class=\"navitem js-page-diary\"><a class=\"navlink\" href=\"/%s/films/diary/\">Diary</a></li>\n"
        "\t\t\t\t<li class=\"navitem js-page-watchlist\" data-owner=\"%s\"><a class=\"navlink\" href=\"/%s/watchlist/\" >Watchlist</a></li>\n"
        "\t\t\t\t<li data-owner=\"%s\" class=\"navitem js-page-lists\"><a class=\"navlink\" href=\"/%s/lists/\">Lists</a></li>\n"
        "\t\t\t\t<li data-owner=\"%s\" class=\"navitem js-page-likes\"><a class=\"navlink\" href=\"/%s/likes/films/\">Likes</a></li>\n"
        "\t\t\t</ul>\n"
        "    </nav>\n"
        "</section>\n\n",
        u, u, u, u, u, u, u, u, u, u, u, u, u, u, u);
}

static fb_err fb__heading(fb_buf *o, const fb_page_view *v)
{
    fb_err err = FB_OK;

    FB__TRY(fb_buf_appendf(o,
        "<h1 class=\"section-heading\"><span class=\"replace-if-you\" data-replacement=\"You want\" "
        "data-person=\"%s\">%s wants</span> to see <span class=\"js-watchlist-count\">",
        v->user->name, v->user->name));
    FB__TRY(fb__put_count(o, v->total));
    FB__TRY(fb_buf_puts(o, v->total == 1 ? "&nbsp;film</span></h1>" : "&nbsp;films</span></h1>"));
out:
    return err;
}

static fb_err fb__sorting(fb_buf *o, const char *u)
{
    return fb_buf_appendf(o,
        " <div class=\"sorting-selects has-hide-toggle\"> <section class=\"smenu-wrapper hide-toggle-menu\"> "
        "<div class=\"smenu\"> <label><span class=\"ir s hide-toggle-icon\">Visibility Filters</span><i class=\"ir s icon\"></i></label> </div> </section> "
        "<section class=\"smenu-wrapper\"> <strong class=\"smenu-label\">Sort by</strong> <div class=\"smenu\"> "
        "<label>When Added<i class=\"ir s icon\"></i></label> <ul class=\"smenu-menu\"> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/by/name/\">Film Name</a></li> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/by/popular/\">Film Popularity</a></li> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/by/shuffle/\">Shuffle</a></li> "
        "<li class=\"\"><span class=\"smenu-sublabel\">When Added</span> <ul> "
        "<li class=\" smenu-subselected\"><a class=\"item\" href=\"/%s/watchlist/\"><i class=\"ir s icon\"></i>Newest First</a></li> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/by/date-earliest/\">Earliest First</a></li> </ul></li> "
        "</ul> </div> </section>\n\n"
        " <section class=\"smenu-wrapper\"> <div class=\"smenu\"> <label> Genre<i class=\"ir s icon\"></i> </label> "
        "<ul class=\"smenu-menu\"> <li class=\"smenu-subselected\"><span class=\"selected\">Any genre</span></li> "
        "<li class=\"divider-line\"> <ul> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/genre/drama/\"><i class=\"ir s icon\"></i>Drama</a></li> "
        "<li class=\"\"><a class=\"item\" href=\"/%s/watchlist/genre/horror/\"><i class=\"ir s icon\"></i>Horror</a></li> "
        "</ul> </li> </ul> </div> </section> </div> <div class=\"clear\"></div> </div>\n",
        u, u, u, u, u, u, u);
}

/* {"lid":"q0V","uid":"film:100001","type":"film","typeName":"film"}: every
 * value is [0-9A-Za-z:], so the text needs no JSON escaping. */
static fb_err fb__put_identifier(fb_buf *o, const fb_film *f, int entity_encoded)
{
    const char *q = entity_encoded ? "&quot;" : "\"";
    return fb_buf_appendf(o, "{%slid%s:%s%s%s,%suid%s:%sfilm:%ld%s,%stype%s:%sfilm%s,%stypeName%s:%sfilm%s}",
                          q, q, q, f->lid, q, q, q, q, f->lb_id, q, q, q, q, q, q, q, q, q);
}

static fb_err fb__poster_classic(fb_buf *o, const fb_page_view *v, long n)
{
    fb_err err = FB_OK;
    const fb_film *f = &v->catalog->films[n];
    uint64_t h = fb_mix64((uint64_t)n ^ fb_hash_str(v->user->key));
    int rating = h % 5 == 0 ? (int)((h >> 8) % 10) + 1 : 0;
    int seen = (h >> 16) % 7 == 0;

    FB__TRY(fb_buf_appendf(o,
        "\n\n\n\n\n\n<li class=\"poster-container%s\" data-owner-rating=\"%d\">\n"
        "\t<div class=\"really-lazy-load poster film-poster linked-film-poster\" data-type=\"film\" "
        "data-request-poster-metadata=\"true\" data-likeable=\"true\" data-watchable=\"true\" "
        "data-rateable=\"true\" data-image-width=\"125\" data-image-height=\"187\" data-type-name=\"film\" "
        "data-film-id=\"%ld\" data-item-uid=\"film:%ld\" data-postered-identifier='",
        seen ? " watchlist-seen" : "", rating, f->lb_id, f->lb_id));
    FB__TRY(fb__put_identifier(o, f, 0));
    FB__TRY(fb_buf_appendf(o,
        "' data-film-slug=\"%s\" data-poster-url=\"/film/%s/image-150/\" data-linked=\"linked\" "
        "data-target-link=\"/film/%s/\" data-target-link-target=\"\" data-details-endpoint=\"/film/%s/json/\" "
        "data-cache-busting-key=\"_%08x\" data-show-menu=\"true\" > <img src=\"" FB__EMPTY_POSTER "\" "
        "class=\"image\" width=\"125\" height=\"187\" alt=\"",
        f->slug, f->slug, f->slug, f->slug, (unsigned)(h >> 32)));
    FB__TRY(fb_buf_put_html(o, f->title));
    FB__TRY(fb_buf_puts(o, "\"/> <span class=\"frame\"><span class=\"frame-title\"></span></span> </div>\n\n</li>\n"));
out:
    return err;
}

static fb_err fb__poster_react(fb_buf *o, const fb_page_view *v, long n)
{
    fb_err err = FB_OK;
    const fb_film *f = &v->catalog->films[n];
    int r2026 = v->markup == FB_MARKUP_REACT2026;
    const char *aq = r2026 ? "'" : "\""; /* quote of the JSON attributes */
    unsigned key = (unsigned)(fb_mix64((uint64_t)n + 1) >> 32);

    FB__TRY(fb_buf_puts(o,
        "\n\t\t\t\t\t\t\t\t\n\t\t\t\t\t\t\t\t\t\n\n\n\n\n\n<li class=\"griditem\">\n"
        "\t<div class=\"react-component\" data-component-class=\"LazyPoster\" "
        "data-request-poster-metadata=\"true\" data-likeable=\"true\" data-watchable=\"true\" "
        "data-rateable=\"true\" data-image-width=\"125\" data-image-height=\"187\" data-item-name=\""));
    FB__TRY(fb_buf_put_html(o, f->title));
    FB__TRY(fb_buf_appendf(o, " (%d)\" data-item-slug=\"%s\" data-item-link=\"/film/%s/\" "
                              "data-item-full-display-name=\"", f->year, f->slug, f->slug));
    FB__TRY(fb_buf_put_html(o, f->title));
    FB__TRY(fb_buf_appendf(o, " (%d)\"", f->year));
    if (!r2026)
        FB__TRY(fb_buf_appendf(o, " data-film-id=\"%ld\"", f->lb_id));
    FB__TRY(fb_buf_appendf(o, " data-postered-identifier=%s", aq));
    FB__TRY(fb__put_identifier(o, f, 1));
    FB__TRY(fb_buf_appendf(o, "%s data-poster-url=\"/film/%s/image-150/\" data-resolvable-poster-path=%s"
                              "{&quot;postered&quot;:", aq, f->slug, aq));
    FB__TRY(fb__put_identifier(o, f, 1));
    FB__TRY(fb_buf_appendf(o,
        ",&quot;posteredBaseLink&quot;:&quot;/film/%s/&quot;,&quot;isAdultThemed&quot;:false,"
        "&quot;hasDefaultPoster&quot;:true,&quot;cacheBustingKey&quot;:&quot;%08x&quot;}%s "
        "data-empty-poster-src=\"" FB__EMPTY_POSTER "\" data-is-linked=\"true\" "
        "data-target-link=\"/film/%s/\" data-details-endpoint=\"/film/%s/json/\" data-show-menu=\"true\" > "
        "<div class=\"poster film-poster\"> <img src=\"",
        f->slug, key, aq, f->slug, f->slug));
    if (v->posters)
        FB__TRY(fb_buf_appendf(o, "/resized/film-poster/%ld/%ld-%s-0-125-0-187-crop.png?v=%08x", f->lb_id,
                               f->lb_id, f->slug, key));
    else
        FB__TRY(fb_buf_puts(o, FB__EMPTY_POSTER));
    FB__TRY(fb_buf_puts(o, "\" class=\"image\" width=\"125\" height=\"187\" alt=\""));
    FB__TRY(fb_buf_put_html(o, f->title));
    FB__TRY(fb_buf_puts(o, "\"/> <span class=\"frame\"><span class=\"frame-title\"></span></span> </div> </div>\n</li>\n"));
out:
    return err;
}

/*
 * Newer/Older links and the page list: page 1, pages current-2..current+2,
 * the last page, "…" for gaps of two pages or more. Past the end the window
 * is the last three pages. No pagination at all on a one-page list's page 1.
 */
static fb_err fb__pagination(fb_buf *o, const fb_page_view *v, long last)
{
    fb_err err = FB_OK;
    const char *u = v->user->name;
    long page = v->page;
    const char *hellip = v->markup == FB_MARKUP_REACT2026 ? "\xE2\x80\xA6" : "&hellip;";

    if (last <= 1 && page <= 1)
        goto out;
    FB__TRY(fb_buf_puts(o, "\t\t\t\t<div class=\"pagination\"> "));
    if (page > 1) {
        FB__TRY(fb_buf_puts(o, "<div class=\"paginate-nextprev\"><a class=\"previous\" href=\""));
        FB__TRY(fb__put_page_href(o, u, page - 1));
        FB__TRY(fb_buf_puts(o, "\">Newer</a></div> "));
    } else {
        FB__TRY(fb_buf_puts(o, "<div class=\"paginate-nextprev paginate-disabled\"><span class=\"previous\">Newer</span></div> "));
    }
    if (page < last) {
        FB__TRY(fb_buf_puts(o, "<div class=\"paginate-nextprev\"><a class=\"next\" href=\""));
        FB__TRY(fb__put_page_href(o, u, page + 1));
        FB__TRY(fb_buf_puts(o, "\">Older</a></div> "));
    } else {
        FB__TRY(fb_buf_puts(o, "<div class=\"paginate-nextprev paginate-disabled\"><span class=\"next\">Older</span></div> "));
    }
    if (last >= 1) {
        long lo = page <= last ? page - 2 : last - 2;
        long hi = page <= last ? page + 2 : last;
        if (lo < 1)
            lo = 1;
        if (hi > last)
            hi = last;
        long shown[12]; /* 1, gap, 5 around the current page, gap, last */
        size_t ns = 0;
        if (lo > 1)
            shown[ns++] = 1;
        if (lo == 3)
            shown[ns++] = 2;
        else if (lo > 3)
            shown[ns++] = -1;
        for (long p = lo; p <= hi; p++)
            shown[ns++] = p;
        if (hi == last - 2)
            shown[ns++] = last - 1;
        else if (hi < last - 2)
            shown[ns++] = -1;
        if (hi < last)
            shown[ns++] = last;

        FB__TRY(fb_buf_puts(o, "<div class=\"paginate-pages\"> <ul> "));
        for (size_t i = 0; i < ns; i++) {
            long p = shown[i];
            if (p < 0) {
                FB__TRY(fb_buf_appendf(o, "<li class=\"paginate-page unseen-pages\">%s</li> ", hellip));
            } else if (p == page) {
                FB__TRY(fb_buf_appendf(o, "<li class=\"paginate-page paginate-current\"><span>%ld</span></li> ", p));
            } else {
                FB__TRY(fb_buf_puts(o, "<li class=\"paginate-page\"><a href=\""));
                FB__TRY(fb__put_page_href(o, u, p));
                FB__TRY(fb_buf_appendf(o, "\">%ld</a></li> ", p));
            }
        }
        FB__TRY(fb_buf_puts(o, "</ul> </div> "));
    }
    FB__TRY(fb_buf_puts(o, "</div>\n\n"));
out:
    return err;
}

static fb_err fb__sidebar(fb_buf *o, const char *u)
{
    return fb_buf_appendf(o,
        "\t\t\t\t<aside class=\"sidebar\">\n"
        "\t\t\t\t\t<section class=\"section panel-text\">\n"
        "\t\t\t\t\t\t<h3 class=\"section-heading\">How to add</h3>\n"
        "\t\t\t\t\t\t<p>\n"
        "\t\t\t\t\t\t\tAdd films you want to see to your watchlist from the <span class=\"icon-poster-menu\"></span> icon on each film poster.\n"
        "\t\t\t\t\t\t\tUse our <a href=\"/about/importing-data/\">import format</a>, up to a maximum of 1,900 films per file.\n"
        "\t\t\t\t\t\t</p>\n"
        "\t\t\t\t\t</section>\n"
        "\t\t\t\t\t<section class=\"section\"><a href=\"/%s/watchlist/export/\" class=\"hide-for-empty-list\">Export watchlist</a></section>\n"
        "\t\t\t\t</aside>\n",
        u);
}

static fb_err fb__footer(fb_buf *o)
{
    return fb_buf_puts(o,
        "\t\t</div>\n"
        "\t</div>\n"
        "\t<footer id=\"page-footer\" class=\"page-footer js-page-footer js-hide-in-app\">\n"
        "\t\t<div class=\"content-wrap\">\n"
        "\t\t\t\t<nav class=\"footer-nav js-footer-nav\">\n"
        "\t\t\t\t\t<ul>\n"
        "\t\t\t\t\t\t<li><a href=\"/about/\">About</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/pro/\">Pro</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/journal/\">News</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/apps/\">Apps</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/welcome/\">Help</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/legal/terms-of-use/\">Terms</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/api-beta/\">API</a></li>\n"
        "\t\t\t\t\t\t<li><a href=\"/contact/\">Contact</a></li>\n"
        "\t\t\t\t\t</ul>\n"
        "\t\t\t\t</nav>\n"
        "\t\t\t<p class=\"copyright\">&copy; Letterboxd Limited. Made by <a href=\"/hello/\" class=\"hide-in-app\">fine folk</a> in Aotearoa New Zealand.</p>\n"
        "\t\t</div>\n"
        "\t</footer>\n"
        "</body>\n"
        "</html>\n");
}

fb_err fb_render_watchlist(const fb_page_view *v, fb_buf *out)
{
    fb_err err = FB_OK;
    const char *u = v->user->name;
    int classic = v->markup == FB_MARKUP_CLASSIC;
    long per = v->per_page;
    uint64_t h = fb_hash_str(v->user->key);

    if (per < 1 || per > FB_PER_PAGE_MAX || v->page < 1 || v->page > FB_PAGE_MAX)
        return FB_INVALID;
    long last = (long)((v->total + (size_t)per - 1) / (size_t)per);
    FB__TRY(fb__head(out, v));
    FB__TRY(fb__site_header(out, v));
    FB__TRY(fb__profile_header(out, u));
    FB__TRY(fb_buf_appendf(out,
        "\t\t<div class=\"cols-2 js-watchlist-content\" data-path=\"/esi/watchlist/%lu/default/public:%lu/page/%ld/?esiAllowFilters=true\" "
        "data-num-entries=\"%zu\">\n\n"
        "\t\t\t<section class=\"section %s col-main js-watchlist-main-content\">\n\n\n",
        (unsigned long)(h % 90000000u) + 1000000u, (unsigned long)((h >> 32) % 9000000u) + 100000u,
        v->page, v->total, classic ? "col-17" : "col-24"));
    if (classic) {
        FB__TRY(fb_buf_puts(out, "\t\t\t\t\t<header class=\"page-header\">\n\t\t\t\t\t\t"));
        FB__TRY(fb__heading(out, v));
        FB__TRY(fb_buf_puts(out, "\n\t\t\t\t\t</header>\n\n\n\n\n<div id=\"content-nav\" class=\"basic\">"));
    } else {
        FB__TRY(fb_buf_puts(out, "<div id=\"content-nav\" class=\"basic\"> "));
        FB__TRY(fb__heading(out, v));
    }
    FB__TRY(fb__sorting(out, u));
    FB__TRY(fb_buf_puts(out, classic ? "\n\n\n\n\n\n\n\t\t\t\t\t\t<ul class=\"poster-list -p125 -grid -constrained\">\n"
                                     : "\n\n\t\t\t\t\t\t<div class=\"poster-grid\">\n"
                                       "\t\t\t\t\t\t\t<ul class=\"grid -p125 -scaled128\">\n"));

    /* Both factors are bounded (checked above): no overflow. */
    size_t first = (size_t)(v->page - 1) * (size_t)per;
    for (size_t i = first; i < v->total && i < first + (size_t)per; i++) {
        FB__TRY(classic ? fb__poster_classic(out, v, v->films[i])
                        : fb__poster_react(out, v, v->films[i]));
    }
    FB__TRY(fb_buf_puts(out, classic ? "\n\t\t\t\t\t\t</ul>\n\n"
                                     : "\n\t\t\t\t\t\t\t</ul>\n\t\t\t\t\t</div>\n\n"));
    FB__TRY(fb__pagination(out, v, last));
    FB__TRY(fb_buf_puts(out, "\t\t\t\t<div class=\"clear\"></div>\n\t\t\t</section>\n\n"));
    if (classic)
        FB__TRY(fb__sidebar(out, u));
    FB__TRY(fb_buf_puts(out, "\t\t</div>\n\n"));
    FB__TRY(fb__footer(out));
out:
    return err;
}

fb_err fb_render_garbage(const fb_page_view *v, fb_buf *out)
{
    fb_err err = FB_OK;

    FB__TRY(fb_buf_appendf(out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>%s \xE2\x80\x94 Letterboxd</title>\n"
        "<script type=\"module\" src=\"/assets/app-9f2c1e.js\"></script>\n"
        "</head>\n<body>\n<div id=\"__app\" data-route=\"member.want\" data-member=\"%s\">\n"
        "<main class=\"sc-kTLmzF layout\">\n<h2 class=\"sc-bdVaJa\">Want to watch</h2>\n"
        "<section class=\"sc-htpNat cards\">\n",
        v->user->name, v->user->name));
    for (size_t i = 0; i < v->total && i < 12; i++) {
        const fb_film *f = &v->catalog->films[v->films[i]];
        FB__TRY(fb_buf_puts(out, "<article class=\"sc-bxivhb card\" tabindex=\"0\"><span class=\"sc-ifAKCX\">"));
        FB__TRY(fb_buf_put_html(out, f->title));
        FB__TRY(fb_buf_appendf(out, "</span><span class=\"sc-EHOje\">%d</span></article>\n", f->year));
    }
    FB__TRY(fb_buf_puts(out,
        "</section>\n<button class=\"sc-load-more\" data-cursor=\"eyJvIjoyOH0\">Load more</button>\n"
        "</main>\n</div>\n</body>\n</html>\n"));
out:
    return err;
}

fb_err fb_render_not_found(fb_buf *out)
{
    return fb_buf_puts(out,
        "\n\n<!DOCTYPE html>\n\n"
        "<html id=\"html\" lang=\"en\" class=\"context-client-unknown no-mobile no-js\">\n"
        "<head>\n"
        "\t<meta charset=\"UTF-8\" />\n"
        "\t<meta name=\"viewport\" content=\"width=1024\" />\n"
        "\t<title>&lrm;Letterboxd - Not Found</title>\n"
        "</head>\n"
        "<body class=\"error message-dark\">\n"
        "<header class=\"site-header js-hide-in-app\" id=\"header\">\n"
        "\t<section>\n"
        "\t\t<h1 class=\"site-logo\"><a href=\"/\" class=\"logo replace\">Letterboxd &mdash; Your life in film</a></h1>\n"
        "\t</section>\n"
        "</header>\n"
        "<div id=\"content\" class=\"site-body\">\n"
        "\t<div class=\"content-wrap\">\n"
        "\t\t<section class=\"message\">\n"
        "\t\t\t<h1 class=\"title\">Sorry, we can\xE2\x80\x99t find the page you\xE2\x80\x99ve requested.</h1>\n"
        "\t\t\t<p>You may have followed an outdated link or have mistyped a&nbsp;URL. "
        "If you believe this is an error, please <a href=\"/contact/\">let us know</a>.</p>\n"
        "\t\t</section>\n"
        "\t</div>\n"
        "</div>\n"
        "</body>\n"
        "</html>\n");
}

fb_err fb_render_challenge(const char *path, fb_buf *out)
{
    uint64_t h = fb_mix64(fb_hash_str(path));
    unsigned long long ray = (unsigned long long)(h & 0xffffffffffffULL);

    return fb_buf_appendf(out,
        "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">"
        "<meta http-equiv=\"X-UA-Compatible\" content=\"IE=Edge\">"
        "<meta name=\"robots\" content=\"noindex,nofollow\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15;"
        "-webkit-text-size-adjust:100%%;color:#313131;font-family:system-ui,-apple-system,"
        "BlinkMacSystemFont,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}"
        "body{display:flex;flex-direction:column;height:100vh;min-height:100vh}"
        ".main-content{margin:8rem auto;max-width:60rem;padding-left:1.5rem}</style>"
        "<meta http-equiv=\"refresh\" content=\"390\"></head><body class=\"no-js\">"
        "<div class=\"main-wrapper\" role=\"main\"><div class=\"main-content\">"
        "<noscript><div class=\"h2\"><span id=\"challenge-error-text\">Enable JavaScript and cookies to continue</span></div></noscript>"
        "</div></div><script>(function(){window._cf_chl_opt={cvId: '3',cZone: \"letterboxd.com\","
        "cType: 'managed',cRay: '%012llx',cH: 'fake.%016llx',cUPMDTk: \"/?__cf_chl_tk=fake-%012llx\","
        "cFPWv: 'g',cITimeS: '1767225600',cTplC: 0,cTplV: 5,cTplB: 'cf',fa: \"/?__cf_chl_f_tk=fake-%012llx\","
        "md: 'fake',mdrd: 'fake'};var cpo = document.createElement('script');"
        "cpo.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=%012llx';"
        "window._cf_chl_opt.cOgUHash = location.hash === '' && location.href.indexOf('#') !== -1 ? '#' : location.hash;"
        "window._cf_chl_opt.cOgUQuery = location.search === '' && location.href.slice(0, location.href.length - window._cf_chl_opt.cOgUHash.length).indexOf('?') !== -1 ? '?' : location.search;"
        "if (window.history && window.history.replaceState) {var ogU = location.pathname + window._cf_chl_opt.cOgUQuery + window._cf_chl_opt.cOgUHash;"
        "history.replaceState(null, null, \"/?__cf_chl_rt_tk=fake-%012llx\" + window._cf_chl_opt.cOgUHash);"
        "cpo.onload = function() {history.replaceState(null, null, ogU);}}"
        "document.getElementsByTagName('head')[0].appendChild(cpo);}());</script></body></html>",
        ray, (unsigned long long)h, ray, ray, ray, ray);
}

fb_err fb_render_unavailable(fb_buf *out)
{
    return fb_buf_puts(out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\" />\n"
        "<title>Letterboxd &bull; Temporarily unavailable</title>\n</head>\n"
        "<body class=\"error message-dark\">\n<section class=\"message\">\n"
        "<h1 class=\"title\">Letterboxd is temporarily unavailable.</h1>\n"
        "<p>We\xE2\x80\x99re working on it and will be back shortly. Please try again in a few minutes.</p>\n"
        "</section>\n</body>\n</html>\n");
}

fb_err fb_render_rate_limited(fb_buf *out)
{
    return fb_buf_puts(out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\" />\n"
        "<title>Letterboxd &bull; Too Many Requests</title>\n</head>\n"
        "<body class=\"error message-dark\">\n<section class=\"message\">\n"
        "<h1 class=\"title\">Too many requests.</h1>\n"
        "<p>You\xE2\x80\x99re doing that too often. Please slow down and try again shortly.</p>\n"
        "</section>\n</body>\n</html>\n");
}

fb_err fb_render_films_json(const fb_catalog *c, const long *films, size_t n, char **json)
{
    fb_err err = FB_OK;
    json_t *arr = json_array();

    *json = NULL;
    if (!arr) {
        err = FB_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const fb_film *f = &c->films[films[i]];
        json_t *o = json_pack("{s:I,s:s,s:s,s:i}", "lb_id", (json_int_t)f->lb_id, "slug", f->slug,
                              "title", f->title, "year", f->year);
        if (!o || json_array_append_new(arr, o) != 0) {
            err = FB_INVALID;
            goto out;
        }
    }
    *json = json_dumps(arr, JSON_COMPACT);
    if (!*json)
        err = FB_INVALID;
out:
    json_decref(arr);
    return err;
}

/* ---- poster images ---------------------------------------------------- */

/* A 2x3 PNG; the film's id follows its IEND chunk, so every image differs. */
static const unsigned char fb__png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x08, 0x02, 0x00, 0x00, 0x00, 0x36,
    0x88, 0x49, 0xd6, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xe8,
    0x52, 0x50, 0x00, 0x22, 0x06, 0x14, 0x0a, 0x00, 0x34, 0x47, 0x04, 0xbd, 0x2e, 0xcf, 0x36,
    0x55, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

int fb_poster_exists(long lb_id)
{
    return lb_id > 0 && lb_id % 3 != 0;
}

fb_err fb_render_poster(const fb_catalog *c, const char *path, fb_buf *out)
{
    static const char prefix[] = "/resized/film-poster/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return FB_INVALID;
    char *end = NULL;
    long lb_id = strtol(path + sizeof prefix - 1, &end, 10);
    if (!end || *end != '/' || !fb_poster_exists(lb_id))
        return FB_INVALID;
    for (long n = 0; n <= c->universe; n++) {
        if (c->films[n].lb_id != lb_id)
            continue;
        /* "/<lb_id>-<slug>-0-125-0-187-crop.png" must follow */
        char *want = fb_printf("/%ld-%s-0-125-0-187-crop.png", lb_id, c->films[n].slug);
        int ok = strcmp(end, want) == 0;
        free(want);
        if (!ok)
            return FB_INVALID;
        fb_err err = fb_buf_append(out, fb__png, sizeof fb__png);
        if (err == FB_OK)
            err = fb_buf_appendf(out, "film %ld", lb_id);
        return err;
    }
    return FB_INVALID;
}
