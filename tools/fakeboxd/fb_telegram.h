/*
 * fb_telegram.h - fakeboxd plays the Telegram Bot API too, for the stack's
 * alert test: Alertmanager's Telegram receiver (api_url pointed at
 * fakeboxd) calls POST /bot<TOKEN>/sendMessage with a JSON body; the
 * messages are kept (at most FB_TELEGRAM_MAX, oldest dropped) and read back
 * at GET /_fake/telegram. Thread-safe (one lock).
 */
#ifndef FB_TELEGRAM_H
#define FB_TELEGRAM_H

#include <stddef.h>

#include "fb_util.h"

#define FB_TELEGRAM_MAX 1000
#define FB_TELEGRAM_MAX_BODY (64 * 1024)

typedef struct fb_telegram fb_telegram;

fb_telegram *fb_telegram_new(void);
void fb_telegram_free(fb_telegram **t);

/* Handles one Bot API call: path is "/bot<TOKEN>/<method>", body its
 * request body. Sets *json (caller frees) to the Bot API's answer and
 * returns the HTTP status: 200 {"ok":true,"result":{message}} for
 * sendMessage with a chat_id and a text, 400 {"ok":false,...} for a body
 * that is not such JSON, 404 for other methods. */
unsigned fb_telegram_call(fb_telegram *t, const char *path, const char *body, size_t len,
                          char **json);

/* {"messages":[{"token","chat_id","text","parse_mode"},...]}, oldest first. */
char *fb_telegram_json(fb_telegram *t);
void fb_telegram_reset(fb_telegram *t);

#endif
