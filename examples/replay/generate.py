#!/usr/bin/env python3
"""Writes telecom-day.jsonl: a morning of social care for one telco, for
`centralino route replay`.

Three brands (TIM, Telecom Italia, Impresa Semplice), nine operators with their own
Twitter accounts (one English speaker per brand, one who starts late, one who takes a
break), tweets, DMs, Facebook page messages and comments, a few returning customers, and
a fibre outage burst at 09:30 UTC. Deterministic: run it again and the file is the same.

    python3 examples/replay/generate.py > examples/replay/telecom-day.jsonl
"""

import json
import random
from datetime import datetime, timedelta, timezone

random.seed(20260302)
DAY = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # a Monday; 09:00 in Italy


def at(minutes):
    return (DAY + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


BRANDS = {
    "tim": ("TIM_Official", "TIMItaliaPage", [("marco", "Marco", ["it"]), ("giulia", "Giulia", ["it", "en"]), ("luca", "Luca", ["it"])]),
    "telecom-italia": ("TelecomItalia", "TelecomItaliaPage", [("sara", "Sara", ["it"]), ("paolo", "Paolo", ["it", "en"]), ("chiara", "Chiara", ["it"])]),
    "impresa-semplice": ("ImpresaSemplice", "ImpresaSemplicePage", [("andrea", "Andrea", ["it", "en"]), ("francesca", "Francesca", ["it"]), ("roberto", "Roberto", ["it"])]),
}

TEXTS_IT = [
    "il mio modem non va da ieri sera",
    "la fibra è lenta da stamattina, 3 mega invece di 1000",
    "fattura doppia questo mese?",
    "come attivo l'offerta per i giga extra?",
    "ho chiesto il trasloco della linea due settimane fa, notizie?",
    "il tecnico non si è presentato all'appuntamento",
    "posso cambiare il metodo di pagamento dall'app?",
    "mi avete addebitato un servizio che non ho chiesto",
]
TEXTS_EN = [
    "my router keeps dropping the connection, can you help?",
    "I was charged twice this month",
    "how do I enable roaming for a trip abroad?",
]
OUTAGE = [
    "fibra down in tutta la zona Prati #disservizio",
    "GUASTO linea fissa, nessuno risponde al 187",
    "internet down da mezz'ora, è un disservizio generale?",
    "urgente: ufficio senza connessione, abbiamo clienti collegati",
]

events = []


def emit(minute, event):
    events.append((minute, len(events), event))


for brand, (_, _, people) in BRANDS.items():
    for op_id, name, languages in people:
        late = op_id == "chiara"
        emit(0, {
            "type": "operator", "at": at(0), "id": op_id, "name": name,
            "skills": [brand], "languages": languages,
            "accounts": [f"twitter:TIM_{name}" if brand == "tim" else f"twitter:{brand.title().replace('-', '')}_{name}"],
            "capacity": 3, "presence": "offline" if late else "online",
        })
emit(60, {"type": "presence", "at": at(60), "operator": "chiara", "presence": "online"})
emit(150, {"type": "presence", "at": at(150), "operator": "luca", "presence": "away"})
emit(180, {"type": "presence", "at": at(180), "operator": "luca", "presence": "online"})

threads = 0
customers = []  # (customer id, brand, channel, account) for returning customers


def conversation(minute, brand, text, language="it", channel=None, kind=None, customer=None, urgent=False):
    global threads
    threads += 1
    account, page, _ = BRANDS[brand]
    channel = channel or random.choices(["twitter", "facebook"], [3, 1])[0]
    if channel == "twitter":
        kind = kind or random.choices(["public-post", "private-message"], [3, 1])[0]
        key = f"tw-{1890000000000000000 + threads}"
    else:
        account = page
        kind = kind or random.choice(["private-message", "comment"])
        key = f"fb-{threads}"
    customer = customer or str(random.randint(10**17, 10**18))
    text = f"@{account} {text}" if channel == "twitter" and kind == "public-post" else text
    emit(minute, {
        "type": "message", "at": at(minute), "channel": channel, "account": account,
        "conversation": key, "customer": customer, "brand": brand, "language": language,
        "kind": kind, "text": text,
    })
    # Outage reports are quick to handle ("we know, engineers are on it").
    reply = random.randint(20, 90) if urgent else random.randint(30, 240)
    resolve = reply + (random.randint(60, 300) if urgent else random.randint(180, 840))
    emit(minute, {"type": "reply", "conversation": key, "after_s": reply})
    emit(minute, {"type": "resolve", "conversation": key, "after_s": resolve})
    if random.random() < 0.15:
        # The customer writes again in the same thread a little later: it joins.
        later = minute + random.uniform(1, 4)
        emit(later, {
            "type": "message", "at": at(later), "channel": channel,
            "account": account, "conversation": key, "customer": customer, "brand": brand,
            "language": language, "kind": kind, "text": "ci siete?",
        })
    customers.append((customer, brand, channel))


minute = 1.0
while minute < 240:
    burst = 90 <= minute < 120  # 09:30-10:00 UTC: fibre outage on TIM
    if burst:
        conversation(minute, "tim", random.choice(OUTAGE), urgent=True)
        minute += random.uniform(0.2, 0.6)
        continue
    brand = random.choices(list(BRANDS), [5, 3, 2])[0]
    if random.random() < 0.1 and customers:
        # A returning customer on a new thread: stickiness decides who gets them.
        customer, brand, channel = random.choice(customers)
        conversation(minute, brand, "sono ancora io, il problema è tornato", channel=channel, customer=customer)
    elif random.random() < 0.12:
        conversation(minute, brand, random.choice(TEXTS_EN), language="en")
    else:
        conversation(minute, brand, random.choice(TEXTS_IT))
    minute += random.uniform(1.0, 4.5)

print("# A morning of social care for one telco (generated by generate.py; see README.md).")
for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
    print(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
