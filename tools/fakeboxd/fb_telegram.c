/*
 * fb_telegram.c - the fake Telegram Bot API (see fb_telegram.h).
 */
#include "fb_telegram.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fb_telegram {
    pthread_mutex_t lock;
    json_t *messages; /* array, oldest first */
    long long next_id;
};

fb_telegram *fb_telegram_new(void)
{
    fb_telegram *t = fb_malloc(sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->messages = json_array();
    t->next_id = 1;
    return t;
}

void fb_telegram_free(fb_telegram **tp)
{
    fb_telegram *t = *tp;
    if (!t)
        return;
    json_decref(t->messages);
    pthread_mutex_destroy(&t->lock);
    free(t);
    *tp = NULL;
}

static char *fb__tg_error(unsigned code, const char *what)
{
    json_t *o = json_pack("{s:b,s:i,s:s}", "ok", 0, "error_code", (int)code, "description", what);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

unsigned fb_telegram_call(fb_telegram *t, const char *path, const char *body, size_t len,
                          char **json)
{
    /* "/bot<TOKEN>/<method>": the token is anything up to the next slash. */
    const char *slash = strchr(path + 4, '/');
    if (strncmp(path, "/bot", 4) != 0 || !slash || slash == path + 4) {
        *json = fb__tg_error(404, "Not Found");
        return 404;
    }
    if (strcmp(slash + 1, "sendMessage") != 0) {
        *json = fb__tg_error(404, "Not Found: method not faked");
        return 404;
    }
    json_error_t err;
    json_t *in = json_loadb(body ? body : "", len, 0, &err);
    json_t *chat = in ? json_object_get(in, "chat_id") : NULL;
    const char *text = in ? json_string_value(json_object_get(in, "text")) : NULL;
    if (!json_is_object(in) || !(json_is_integer(chat) || json_is_string(chat)) || !text ||
        !*text) {
        json_decref(in);
        *json = fb__tg_error(400, "Bad Request: a JSON object with chat_id and text is needed");
        return 400;
    }
    const char *mode = json_string_value(json_object_get(in, "parse_mode"));
    json_t *msg = json_pack("{s:s%,s:O,s:s,s:s}", "token", path + 4, (size_t)(slash - path - 4),
                            "chat_id", chat, "text", text, "parse_mode", mode ? mode : "");
    pthread_mutex_lock(&t->lock);
    long long id = t->next_id++;
    if (json_array_size(t->messages) >= FB_TELEGRAM_MAX)
        json_array_remove(t->messages, 0);
    json_array_append_new(t->messages, msg);
    pthread_mutex_unlock(&t->lock);
    /* Telegram answers with the chat's numeric id, whichever form the
     * request used (Alertmanager sends it as a string): a client decoding
     * the answer expects an integer. A @name gets a made-up id. */
    json_int_t chat_id = 1;
    if (json_is_integer(chat)) {
        chat_id = json_integer_value(chat);
    } else {
        char *end = NULL;
        long long v = strtoll(json_string_value(chat), &end, 10);
        if (end && *end == '\0' && end != json_string_value(chat))
            chat_id = (json_int_t)v;
    }
    json_t *chat_obj = json_pack("{s:I,s:s}", "id", chat_id, "type", "private");
    json_t *out = json_pack("{s:b,s:{s:I,s:I,s:o,s:s}}", "ok", 1, "result", "message_id",
                            (json_int_t)id, "date", (json_int_t)time(NULL), "chat", chat_obj,
                            "text", text);
    *json = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    json_decref(in);
    return 200;
}

char *fb_telegram_json(fb_telegram *t)
{
    pthread_mutex_lock(&t->lock);
    json_t *o = json_pack("{s:O}", "messages", t->messages);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    pthread_mutex_unlock(&t->lock);
    return s;
}

void fb_telegram_reset(fb_telegram *t)
{
    pthread_mutex_lock(&t->lock);
    json_array_clear(t->messages);
    pthread_mutex_unlock(&t->lock);
}
