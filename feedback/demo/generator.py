"""Deterministic demo feedback for Northwind Home, a fictional furniture and home-goods retailer.

One CSV, customers and staff together, 16 fixed ISO weeks (2026-W31 .. 2026-W46). Texts are
composed from phrase banks (aspects per touchpoint and sentiment, openers, emotions, needs,
closers, channel habits, typos) so that a sentiment or topic model has real wording to work on,
and the planted stories in ``feedback.demo.stories`` are big enough to show up in weekly means.

Everything draws from one ``random.Random(seed)``: the same seed gives the same bytes.
Standard library only, so the demo works before any model or database is installed.

    python -m feedback.demo.generator var/demo.csv --seed 7
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from feedback.demo.stories import STORIES

COLUMNS: tuple[str, ...] = (
    "external_id",
    "created_at",
    "audience",
    "channel",
    "touchpoint",
    "journey_stage",
    "segment",
    "org_unit",
    "language",
    "text",
    "nps",
    "csat",
    "stars",
    "author",
)

FIRST_MONDAY = date(2026, 7, 27)  # Monday of 2026-W31
N_WEEKS = 16
WEEKS: tuple[str, ...] = tuple(
    "{}-W{:02d}".format(*(FIRST_MONDAY + timedelta(weeks=i)).isocalendar()[:2])
    for i in range(N_WEEKS)
)

# Week indexes (0-based) where the stories start; see feedback/demo/stories.py.
COURIER_WEEK = WEEKS.index("2026-W39")
ROTA_WEEK = WEEKS.index("2026-W40")
WISHLIST_WEEK = WEEKS.index("2026-W42")
QUIET_WEEK = WEEKS.index("2026-W35")

# A gentle drift towards the November season; the quiet week is exactly 1.0.
WEEK_FACTOR: tuple[float, ...] = (
    0.97, 0.99, 1.02, 0.99, 1.00, 1.01, 0.98, 1.01,
    1.00, 1.02, 0.99, 1.02, 1.03, 1.01, 1.04, 1.05,
)  # fmt: skip
assert len(WEEK_FACTOR) == N_WEEKS and WEEK_FACTOR[QUIET_WEEK] == 1.0

Polarity = str  # "pos" | "neu" | "neg"

# --------------------------------------------------------------------------------------------
# The world: products, stores, people
# --------------------------------------------------------------------------------------------

Product = tuple[str, int, int, frozenset[str]]


def _tags(words: str) -> frozenset[str]:
    return frozenset(words.split())


PRODUCTS: tuple[Product, ...] = (
    # name, lowest and highest price in dollars (both end in 9: prices step by 10), and what a
    # sentence may say about it ("{product_legs} started wobbling" needs a product with legs).
    ("Oslo 3-seat sofa", 899, 1499, _tags("big living comfy fabric sturdy sags legs hard")),
    ("Bergen oak dining table", 549, 899, _tags("big living assembled legs wood hard")),
    ("Linnea bed frame", 399, 699, _tags("big assembled legs wood sturdy sags hard")),
    ("Aster floor lamp", 59, 129, _tags("living assembled hard")),
    ("Fjord wardrobe", 449, 799, _tags("big assembled wood drawers hard")),
    ("Malmo bookshelf", 129, 249, _tags("living assembled wood sags hard")),
    ("Kasa memory foam mattress", 499, 999, _tags("big comfy mattress sags")),
    ("Harbor office chair", 179, 349, _tags("assembled comfy fabric legs hard")),
    ("Sora wool rug", 199, 449, _tags("living fabric")),
    ("Nordic coffee table", 149, 299, _tags("living assembled legs wood sturdy hard")),
    ("Alba linen duvet set", 89, 179, _tags("fabric comfy")),
    ("Terra ceramic dinner set", 69, 139, _tags("hard")),
    ("Vika corner desk", 229, 399, _tags("assembled legs wood drawers hard")),
    ("Lund armchair", 349, 599, _tags("big living comfy fabric sturdy sags legs hard")),
    ("Elm sideboard", 499, 849, _tags("big living assembled wood drawers hard")),
    ("Nimbus blackout curtains", 39, 89, _tags("fabric")),
    ("Haven bunk bed", 599, 899, _tags("big assembled legs wood sturdy hard")),
    ("Cove bathroom cabinet", 159, 299, _tags("assembled wood drawers hard")),
    ("Birch bar stools", 119, 219, _tags("assembled legs wood hard")),
    ("Pia storage baskets", 19, 49, _tags("")),
)
CITIES = ("Portland", "Seattle", "Denver", "Austin", "Chicago", "Boston", "Minneapolis", "Raleigh")
AGENTS = ("Maria", "Tom", "Priya", "Jamal", "Sofia", "Ben", "Aisha", "Luke", "Mei", "Carlos",
          "Hannah", "Omar")  # fmt: skip

# Invented contact details in reserved ranges (example.com, 555-01xx, card-network test numbers)
# so the redactor has something real-looking to catch.
PII_NAMES = (("jane", "doe"), ("john", "smith"), ("maria", "garcia"), ("wei", "chen"),
             ("sam", "okafor"), ("lena", "fischer"), ("raj", "patel"),
             ("emma", "brown"))  # fmt: skip
TEST_CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4242 4242 4242 4242",
              "4012-8888-8888-1881", "3782 822463 10005")  # fmt: skip

TOUCHPOINT_SHARE: dict[str, float] = {
    "website": 0.16, "app": 0.17, "checkout": 0.12, "delivery": 0.15,
    "returns": 0.10, "support": 0.15, "store": 0.15,
}  # fmt: skip
STAGE = {"website": "discover", "app": "discover", "checkout": "purchase", "delivery": "receive",
         "returns": "service", "support": "service", "store": "purchase"}  # fmt: skip
# Share of website / app / store rows that talk about the product in use (journey_stage "use").
PRODUCT_USE_SHARE = 0.25

CHANNELS: dict[str, tuple[tuple[str, int], ...]] = {
    "website": (("survey", 4), ("review", 3), ("chat", 1), ("social", 2)),
    "app": (("app_review", 5), ("survey", 2), ("chat", 1), ("social", 2)),
    "checkout": (("survey", 5), ("chat", 2), ("ticket", 2), ("social", 1)),
    "delivery": (("survey", 4), ("review", 2), ("ticket", 2), ("chat", 1), ("social", 1)),
    "returns": (("ticket", 4), ("survey", 3), ("chat", 2), ("review", 1)),
    "support": (("ticket", 4), ("chat", 4), ("survey", 2)),
    "store": (("survey", 5), ("review", 4), ("social", 1)),
    "product": (("review", 6), ("survey", 3), ("social", 1)),
    # after the courier change angry customers open tickets and post
    "delivery_swift": (("survey", 3), ("review", 2), ("ticket", 3), ("chat", 1), ("social", 2)),
    "wishlist": (("app_review", 6), ("chat", 2), ("social", 2), ("ticket", 1)),
}

# (pos, neu, neg) shares; constant over the weeks unless a story changes them.
CUSTOMER_POLARITY: dict[str, tuple[float, float, float]] = {
    "website": (0.50, 0.25, 0.25),
    "app": (0.46, 0.24, 0.30),
    "checkout": (0.45, 0.25, 0.30),
    "delivery": (0.62, 0.20, 0.18),
    "delivery_swift": (0.15, 0.17, 0.68),
    "returns": (0.35, 0.30, 0.35),
    "support": (0.45, 0.20, 0.35),
    "store": (0.62, 0.22, 0.16),
    "product": (0.55, 0.22, 0.23),
    "wishlist": (0.0, 0.15, 0.85),
}
# Planted wishlist complaints per week from 2026-W42 (before noise of +-2).
WISHLIST_PER_WEEK = (17, 23, 22, 19, 18)
DELIVERY_SURGE = 1.4
EMPTY_TOUCHPOINT_SHARE = 0.118  # of non-delivery rows: ~10% of all customer rows
FOREIGN_SHARE = 0.012
PII_SHARE = 0.011

SEGMENTS = (("new", 30), ("returning", 45), ("loyalty_member", 25))
CUSTOMER_POOL = 4500


@dataclass(frozen=True)
class _Team:
    share: float  # of employee rows
    pool: int  # people who may answer
    tool: tuple[str, ...]  # phrase fillers for {tool}, {place}, {task}, {manager_role}
    place: tuple[str, ...]
    task: tuple[str, ...]
    manager_role: tuple[str, ...]


TEAMS: dict[str, _Team] = {
    "stores": _Team(
        share=0.27,
        pool=140,
        tool=("till system", "stock-check handhelds", "scheduling app", "price-label printer"),
        place=("shop floor", "tills", "late shift"),
        task=("restocking shelves", "helping customers on the floor", "click-and-collect orders",
              "setting up displays"),
        manager_role=("store manager", "shift supervisor"),
    ),
    "warehouse": _Team(
        share=0.27,
        pool=110,
        tool=("handheld scanners", "forklifts", "warehouse management system", "label printers"),
        place=("loading dock", "warehouse floor", "night shift"),
        task=("picking orders", "loading trucks", "checking inbound deliveries",
              "packing bulky items"),
        manager_role=("shift lead", "warehouse manager"),
    ),
    "customer_service": _Team(
        share=0.22,
        pool=90,
        tool=("ticketing system", "phone system", "CRM", "headsets"),
        place=("support floor", "phones", "chat queue"),
        task=("answering calls", "working the chat queue", "handling refund tickets",
              "calming down upset customers"),
        manager_role=("team lead", "support manager"),
    ),
    "engineering": _Team(
        share=0.16,
        pool=60,
        tool=("CI pipeline", "laptops", "staging environment", "on-call tooling"),
        place=("platform team", "checkout squad", "mobile team"),
        task=("shipping features", "being on call", "code reviews", "fixing checkout bugs"),
        manager_role=("engineering manager", "tech lead"),
    ),
    # Deliberately small (~6 answers a week): exercises min_group_size suppression.
    "marketing": _Team(
        share=0.08,
        pool=30,
        tool=("asset library", "campaign tools", "analytics dashboards"),
        place=("brand team", "content team"),
        task=("campaign launches", "photo shoots", "writing product copy"),
        manager_role=("marketing lead", "head of brand"),
    ),
}  # fmt: skip
TEAM_POLARITY: dict[str, tuple[float, float, float]] = {
    "stores": (0.48, 0.30, 0.22),
    "warehouse": (0.46, 0.30, 0.24),
    "customer_service": (0.42, 0.30, 0.28),
    "engineering": (0.52, 0.28, 0.20),
    "marketing": (0.50, 0.30, 0.20),
    "warehouse_rota": (0.12, 0.20, 0.68),
}
ROTA_RESPONSE_UPLIFT = 1.1  # angry teams answer the pulse a little more
TENURE = (("<1y", 25), ("1-3y", 40), ("3y+", 35))
EMPLOYEE_STAGE = {"onboarding": "join", "day_to_day": "work", "manager": "work",
                  "pay_benefits": "work", "tools": "work", "career": "grow"}  # fmt: skip

# Day-of-week weights, Monday first.
DAY_WEIGHTS: dict[str, tuple[float, ...]] = {
    "default": (1.0, 1.0, 1.0, 1.0, 1.05, 1.2, 1.1),
    "app": (0.85, 0.85, 0.85, 0.9, 1.0, 1.5, 1.55),
    "store": (0.7, 0.75, 0.75, 0.8, 1.0, 1.75, 1.5),
    "support": (1.2, 1.15, 1.1, 1.1, 1.0, 0.7, 0.6),
    "delivery": (1.1, 1.1, 1.1, 1.1, 1.1, 1.0, 0.5),
    "office": (1.2, 1.2, 1.2, 1.1, 1.0, 0.15, 0.1),
    "shifts": (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6),
}
CUSTOMER_HOURS = tuple(range(24))
CUSTOMER_HOUR_WEIGHTS = (1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4.5, 5, 5.5, 5, 4.5, 4.5, 5, 5.5,
                         6, 6.5, 7, 6, 4, 2)  # fmt: skip
EMPLOYEE_HOURS = tuple(range(6, 23))
EMPLOYEE_HOUR_WEIGHTS = (1, 2, 4, 6, 6, 5, 6, 5, 5, 5, 6, 5, 3, 2, 1.5, 1, 0.5)

# --------------------------------------------------------------------------------------------
# Customer phrase banks. Every entry is one sentence; {slots} are filled per row.
# No background text uses a story's `absent_before` terms (SwiftShip, wishlist, rota, ...).
# --------------------------------------------------------------------------------------------

ASPECTS: dict[str, dict[Polarity, tuple[str, ...]]] = {
    "website": {
        "pos": (
            "The website is really easy to find your way around.",
            "Found the {product} in two clicks, the search actually works.",
            "Love the room photos on the site, they helped me picture the {product} at home.",
            "Product pages list proper measurements, which saved me a trip to the store.",
            "The filters on the website are brilliant, I narrowed it down to three rugs in "
            "minutes.",
            "Browsing the new autumn collection online was a pleasure.",
            "The site loads fast even on my ancient laptop.",
            "The customer photos under the {product} were honest and genuinely helpful.",
            "The size guide on the website was spot on.",
            "I compared four sofas side by side on the site and it made the choice easy.",
            "Clear prices on the website, no hidden fees, delivery cost shown up front.",
            "The room planner on the website is so much fun to play with.",
            "The website told me the {product} was in stock at my local store, and it was.",
            "Really nice, calm website, no annoying pop-ups.",
        ),
        "neu": (
            "Used the website to check prices before going to the store.",
            "The site is okay, the home page is a bit busy.",
            "Looked at the {product} online, still deciding.",
            "The website works, nothing special about it.",
            "Search results on the site are fine but I had to scroll quite a bit.",
            "I mostly browse on the website and buy in store.",
            "Product descriptions on the site are adequate, some photos could be bigger.",
            "The website was fine, took a while to find the measurements for the {product}.",
            "Browsed the website for about twenty minutes, didn't buy anything this time.",
        ),
        "neg": (
            "The website search is useless, typing 'sofa' shows me candles.",
            "Product pages say 'in stock' and then the item is unavailable when I try to buy it.",
            "The site is painfully slow and crashed twice while I was browsing.",
            "The photos of the {product} on the website look nothing like the real colour.",
            "Filters on the site reset every time I go back a page, so annoying.",
            "Couldn't find the dimensions of the {product} anywhere on the website.",
            "Pop-ups everywhere on the site, I could barely see the products.",
            "The website kept logging me out while I was comparing tables.",
            "Prices on the website are different from what the store charges, feels dishonest.",
            "Half the links in the website menu lead to empty pages.",
            "The website's size guide was wrong and I nearly ordered a bed that doesn't fit.",
            "The product reviews on the site look suspiciously filtered.",
        ),
    },
    "app": {
        "pos": (
            "The app is smooth and the AR view let me see the {product_living} in my living room.",
            "Scanning a barcode in store with the app to check stock is so handy.",
            "The new app design is clean and quick.",
            "Ordering in the app took me less than a minute.",
            "Love that the app remembers my address and payment details.",
            "App notifications told me exactly when my order shipped.",
            "The app's dark mode is a lovely touch.",
            "Browsing the app on the train is my new hobby, so many nice things.",
            "The app search finds things even when I misspell them.",
            "Best shopping app I have on my phone, fast and never crashes.",
            "The app shows the stock in my nearest store, super useful.",
        ),
        "neu": (
            "The app is alright, I use it mostly to track orders.",
            "The app works fine, a bit slow to start up.",
            "Downloaded the app for the discount code, haven't used it much since.",
            "The app does what it says, nothing more.",
            "The app asks me to log in a bit too often but otherwise okay.",
            "The app is fine on my phone, the tablet layout is a bit odd.",
        ),
        "neg": (
            "The app crashes every time I open the product gallery.",
            "The app is so slow, it takes ten seconds to load a product page.",
            "The app logged me out and the password reset email never arrives.",
            "The app keeps sending me push notifications I never asked for.",
            "Filters in the app do nothing, I still see every lamp in the catalogue.",
            "The app froze at the payment step and I have no idea if my order went through.",
            "Images in the app take forever to load on my phone.",
            "The AR feature in the app shows the {product} floating in mid-air, useless.",
            "The app drains my battery like crazy.",
            "The app signs me out every single day, it's maddening.",
        ),
    },
    "checkout": {
        "pos": (
            "Checkout was quick and Apple Pay worked first time.",
            "Paying with PayPal was painless.",
            "The discount code applied straight away at checkout.",
            "Loved being able to split the {price} for the {product_big} into four payments.",
            "Checkout showed the total including delivery before I paid, no surprises.",
            "Guest checkout is fast, no need to create yet another account.",
            "Picking a delivery slot during checkout was super simple.",
            "Checkout took about a minute, which is how it should be.",
            "The checkout confirmed my order instantly and the receipt email came right away.",
        ),
        "neu": (
            "Checkout was fine, a few more steps than I'd like.",
            "Paid by card at checkout, no issues.",
            "Checkout asked for my address twice, but it went through.",
            "Checkout worked, though the delivery options were a bit confusing.",
            "Paid for order {order} at checkout, standard process.",
        ),
        "neg": (
            "My card was declined three times at checkout but the bank says everything is fine.",
            "I was charged twice for order {order} and the second payment still hasn't been "
            "refunded.",
            "The promo code said 'invalid' even though the email arrived yesterday.",
            "Checkout kept timing out and I lost my whole basket.",
            "Delivery cost jumped from $29 to $89 on the last checkout page, that's sneaky.",
            "PayPal isn't working at checkout and there's no explanation anywhere.",
            "The checkout page froze after I pressed pay, and {price} left my account with no "
            "confirmation.",
            "Checkout forces you to create an account, I gave up.",
            "The checkout added a protection plan to my basket without asking.",
        ),
    },
    "delivery": {
        "pos": (
            "Delivery arrived right on time and the two guys carried the {product_big} upstairs.",
            "The delivery crew were lovely and even took the packaging away.",
            "Got a text the evening before with a two-hour window, and they arrived inside it.",
            "The {product} arrived a day earlier than promised.",
            "Delivery was fast, ordered on Monday and it came on Thursday.",
            "Everything arrived perfectly packed, not a scratch.",
            "The driver called 30 minutes ahead, super helpful.",
            "Tracking was accurate to the minute.",
            "Free delivery and it came quickly, can't ask for more.",
            "The drivers were careful with our narrow stairs and polite the whole time.",
            "The delivery team assembled the {product_assembled} for us in twenty minutes.",
            "Order {order} came exactly on the day they said.",
        ),
        "neu": (
            "Delivery came on the scheduled day.",
            "The {product} arrived in {days} days, which is what they said.",
            "Delivery was okay, the time window was a bit long.",
            "The driver left the parcel with a neighbour, which was fine.",
            "Lots of cardboard for one lamp, but it arrived.",
            "Delivery of order {order} happened, nothing to report.",
        ),
        "neg": (
            "My delivery was two days late and no one told me.",
            "The box was dented and one corner of the {product_hard} is scratched.",
            "Waited in all day and the delivery didn't come.",
            "The tracking page hasn't changed in four days.",
            "My delivery slot was moved twice without asking me.",
            "The delivery was late and the driver couldn't find the address.",
        ),
    },
    # After the courier change (2026-W39): the courier is named and things get much worse.
    "delivery_swift": {
        "pos": (
            "Even with the new courier my delivery came on time this week.",
            "The SwiftShip driver was friendly and on time, no complaints.",
            "Delivery arrived right on time and the two guys carried the {product_big} upstairs.",
            "Everything arrived perfectly packed, not a scratch.",
            "The {product} arrived a day earlier than promised.",
            "Got a text the evening before with a two-hour window, and they arrived inside it.",
            "The drivers were careful with our narrow stairs and polite the whole time.",
        ),
        "neu": (
            "Delivery came on the scheduled day.",
            "New courier this time, SwiftShip, it arrived on the second attempt.",
            "The {product} arrived in {days} days, a bit slower than last time.",
            "Delivery was okay, the SwiftShip window was a bit long.",
            "The driver left the parcel with a neighbour, which was fine.",
        ),
        "neg": (
            "SwiftShip missed my delivery slot again, third time this month.",
            "The SwiftShip driver left the {product} in the rain at the front gate.",
            "Since you switched to SwiftShip every delivery is late.",
            "The box arrived crushed, clearly thrown around by SwiftShip.",
            "SwiftShip tracking has said 'out for delivery' for five days now.",
            "No tracking updates at all since the order was handed to SwiftShip.",
            "The SwiftShip courier was rude and refused to bring the {product_big} inside.",
            "I took a day off work for the delivery window and SwiftShip never showed up.",
            "My {product_legs} arrived with a broken leg in a box that looked like it was dropped "
            "from a roof.",
            "SwiftShip marked my parcel as delivered but it's nowhere to be found.",
            "The delivery was {days} days late and SwiftShip's helpline just hangs up.",
            "Why did you change courier? SwiftShip is a disaster.",
            "The SwiftShip driver put a 'sorry we missed you' card through the door while I was "
            "home.",
            "Two deliveries, two damaged boxes, both SwiftShip.",
            "SwiftShip rescheduled my delivery without asking and now it's a week late.",
            "The courier dumped the {product} on the pavement and drove off.",
            "Late again, no call, no tracking, no apology.",
            "Missed slot, damaged box, rude courier, the full set.",
            "Order {order} has been stuck at the SwiftShip depot since {date}.",
            "The new courier is awful, my delivery of order {order} is late and the box was "
            "ripped open.",
        ),
    },
    "returns": {
        "pos": (
            "Returned the {product} in store, no questions asked.",
            "My refund hit my account two days after I dropped off the return.",
            "Booking a return pickup online was really simple.",
            "The returns label was already in the box, so easy.",
            "Swapped the {product} for a different colour without any fuss.",
            "The 100-day return window gave me time to decide, much appreciated.",
            "The refund for order {order} was processed the same day.",
        ),
        "neu": (
            "The return was processed, took about a week.",
            "The refund arrived, slower than I expected but it arrived.",
            "Returns process is standard, print the label and drop it off.",
            "The return pickup needed two emails to arrange, but it got sorted.",
            "Returned the {product}, refund of {price} came back in eight days.",
            "The return took a while, roughly what the website said.",
        ),
        "neg": (
            "Still waiting for my refund of {price}, it's been three weeks.",
            "The return pickup never showed up, twice.",
            "I was told to pay $60 to return a faulty {product}, that's ridiculous.",
            "Nobody can tell me where my returned {product} is or when I'll get my money back.",
            "The returns portal says order {order} is 'not eligible' with no reason.",
            "Returns are a nightmare, I've been passed between four departments.",
            "The refund was less than I paid, they kept the delivery fee without telling me.",
            "Had to drive an hour to return something that was faulty from day one.",
            "The refund for my return is still 'pending' since {date}.",
        ),
    },
    "support": {
        "pos": (
            "{agent} on the chat sorted my issue in five minutes.",
            "Support called me back exactly when they said they would.",
            "The support agent was patient and really knew the products.",
            "{agent} went above and beyond and sent a replacement part the same day.",
            "Customer service answered my email within an hour.",
            "Support resolved the problem with order {order} on the first contact.",
            "The support team was kind and didn't make me repeat myself.",
            "{agent} from customer service was a star, sorted everything in one call.",
        ),
        "neu": (
            "Support answered my question, took a couple of days.",
            "The agent was polite, the issue is still open but they're looking into it.",
            "Got a standard reply from customer service, it covered most of my question.",
            "Waited {minutes} minutes on the phone, then it was sorted.",
            "Support said they'd get back to me about order {order}.",
        ),
        "neg": (
            "I've been on hold for {minutes} minutes and got cut off twice.",
            "Support keeps sending me the same copy-paste answer.",
            "Three emails to customer service and not a single real reply.",
            "The chatbot goes in circles and there's no way to reach a human.",
            "Every agent tells me something different about order {order}.",
            "Support closed my ticket without fixing anything.",
            "I was promised a callback on {date} and nobody ever called.",
            "The agent was dismissive and basically told me it was my fault.",
            "Customer service hung up on me after {minutes} minutes on hold.",
        ),
    },
    "store": {
        "pos": (
            "Staff at the {city} store were so friendly and helpful.",
            "{agent} in the {city} store helped me pick a rug that matches perfectly.",
            "The showroom in {city} is beautiful, lots of ideas for our flat.",
            "Click and collect in {city} was ready within an hour.",
            "The store staff carried the {product} to my car without me asking.",
            "Lovely atmosphere in the {city} store, and the café is a bonus.",
            "The staff member knew everything about mattresses and didn't push me to buy.",
            "The {city} store is always tidy and the staff are genuinely nice.",
        ),
        "neu": (
            "Visited the {city} store, decent selection.",
            "The store was busy on Saturday but we found what we needed.",
            "Parking at the {city} store is limited, the store itself is fine.",
            "The {city} store had most things in stock.",
            "Picked up the {product} in the {city} store, quick and normal.",
        ),
        "neg": (
            "The {city} store was a mess and nobody was around to help.",
            "Queued 25 minutes at the tills in {city} with only one open.",
            "The website said the {product} was in stock in {city}, the store said it wasn't.",
            "The staff in {city} were chatting among themselves and ignored us.",
            "The {city} store had no price tags on half the displays.",
        ),
    },
    # The product in use, bought on the website, in the app or in a store (journey_stage "use").
    "product": {
        "pos": (
            "The {product} is solid and really well made.",
            "Three weeks in and the {product} still looks brand new.",
            "The {product_comfy} is even comfier than I hoped.",
            "Assembly of the {product_assembled} took 20 minutes and every screw was there.",
            "The quality of the {product} for {price} is honestly impressive.",
            "The fabric on the {product_fabric} feels premium and hasn't pilled at all.",
            "My kids climb on the {product_sturdy} every day and it's holding up great.",
            "The {product_living} looks gorgeous in our living room.",
            "Sleeping on the {product_mattress} has been a game changer for my back.",
        ),
        "neu": (
            "The {product} does the job.",
            "The {product} is fine, about what you'd expect for {price}.",
            "The {product} is slightly darker than the photo, but it's okay.",
            "Had the {product} for a month now, no complaints, no wow either.",
            "The {product_assembled} is decent, assembly took a couple of hours.",
        ),
        "neg": (
            "The {product_legs} started wobbling after two weeks.",
            "One of the legs of the {product_legs} cracked within a month.",
            "The {product} smells strongly of chemicals and it hasn't gone away.",
            "The instructions for the {product_assembled} skipped a step and two screws were "
            "missing.",
            "For {price} I expected the {product} to last longer than six weeks.",
            "The finish on the {product_wood} is peeling already.",
            "The {product_sags} sags in the middle after barely a month of use.",
            "The drawer runners on the {product_drawers} broke the first week.",
        ),
    },
    "wishlist": {
        "neu": (
            "My wishlist seems to be empty since the update, is this a known issue?",
            "Is the wishlist being fixed? Some of my saved items are missing.",
            "The wishlist shows nothing since the update, will my saved items come back?",
            "Not sure if it's me or the app, but my saved list looks empty.",
        ),
        "neg": (
            "My wishlist disappeared after the update.",
            "All my saved items are gone after the update, months of planning lost.",
            "The wishlist crashes the app every time I open it.",
            "Lost my saved list with 40 things for our new house.",
            "Since the latest update the wishlist is completely empty.",
            "Tapping the heart does nothing anymore, saved items gone after the update.",
            "The wishlist crashes as soon as I scroll.",
            "Why did the update wipe my wishlist?",
            "I had the {product} on my wishlist for weeks waiting for a sale and now the whole "
            "list is gone.",
            "Saved items gone after the update, and support says they can't restore them.",
            "The wishlist shows an error and then the app closes.",
            "I use the wishlist to plan rooms, and it's just blank now.",
            "Wishlist broken since the update, I can't save anything.",
            "The new version lost my saved list and the wishlist screen keeps crashing.",
        ),
    },
}
# Mixed feedback concedes something about another part of the journey ("the sofa is lovely,
# but ..."); the same part would contradict itself ("it was late, but it came on time"). Never
# delivery: a delivery sentence under another touchpoint would blur the courier story.
CONCESSION_THEMES: dict[str, tuple[str, ...]] = {
    "website": ("app", "store", "product"),
    "app": ("website", "store"),
    "checkout": ("website", "app", "product"),
    "delivery": ("product", "checkout", "store"),
    "delivery_swift": ("product", "checkout", "store"),
    "returns": ("product", "store", "support"),
    "support": ("product", "returns", "store"),
    "store": ("website", "product", "checkout"),
    "product": ("store", "website", "support"),
    "wishlist": ("website", "store"),
}
# Where the product was bought, added to some product-use sentences.
PRODUCT_SOURCE = {
    "website": ("Ordered it on the website.", "Bought it online from your website.",
                "Found it on the website."),
    "app": ("Ordered it through the app.", "Bought it in the app.", "Got it via the app."),
    "store": ("Bought it at the {city} store.", "Picked it up in the {city} store.",
              "Bought it in store."),
}  # fmt: skip

OPENERS: dict[Polarity, tuple[str, ...]] = {
    # "X, " openers run into the next sentence; the rest are sentences of their own.
    "pos": ("Honestly, ", "Wow. ", "Just want to say, ", "Really happy! ", "Five stars from me. ",
            "Great experience overall. ", "So impressed. ", "Have to give credit where it's due, ",
            "Shout out to Northwind. ", "Can't fault it. ", "Brilliant. ", "Very pleased. "),
    "neu": ("Overall okay. ", "Fine, I guess. ", "No strong feelings. ", "It was average. ",
            "Quick note. ", "For what it's worth, ", "Nothing major. "),
    "neg": ("Really disappointed. ", "Not happy. ", "Ugh. ", "Where do I start. ",
            "This is unacceptable. ", "Seriously? ", "I'm fed up. ", "Worst experience. ",
            "Honestly, ", "Very poor. ", "Not impressed at all. ", "Sorry but, "),
}  # fmt: skip
APP_REVIEW_TITLES: dict[Polarity, tuple[str, ...]] = {
    "pos": ("Great app. ", "Love it! ", "Super handy. ", "Five stars. "),
    "neu": ("It's ok. ", "Does the job. ", "Average. "),
    "neg": ("Buggy. ", "Needs work. ", "Frustrating app. ", "One star. ", "Broken. "),
}
CLOSERS: dict[Polarity, tuple[str, ...]] = {
    "pos": ("Will definitely shop again.", "Thanks Northwind!", "Keep it up.", "10/10.",
            "Highly recommend.", "See you again soon.", "Great job, team.", "Very happy customer.",
            "Couldn't be happier."),
    "neu": ("That's all.", "Nothing else to add.", "We'll see next time.",
            "Could be better, could be worse.", "Just my two cents."),
    "neg": ("Please sort this out.", "I want a refund.", "Never again.", "Fix this, please.",
            "Still waiting for an answer.", "Very disappointed.", "I expect a call back.",
            "Do better.", "Absolutely ridiculous."),
}  # fmt: skip
EMOTIONS: dict[str, tuple[str, ...]] = {
    "frustration": ("I'm so frustrated.", "This is beyond annoying.",
                    "I'm losing my patience here.", "Honestly infuriating.",
                    "I'm sick of chasing this."),
    "confusion": ("I'm genuinely confused about what happens next.",
                  "Nobody can explain what is going on.",
                  "I don't understand why this is so complicated.",
                  "I'm confused, the emails say one thing and the website another."),
    "anxiety": ("I'm getting really anxious that my order is lost.",
                "I'm worried I'll never see my money back.",
                "This is stressing me out, we move house on {future_date}.",
                "I'm nervous it won't arrive before my parents visit."),
    "delight": ("Absolutely delighted!", "I love it so much.", "Made my week, honestly.",
                "We're thrilled with it.", "Such a joy."),
    "gratitude": ("Thank you so much!", "Huge thanks to the team.", "Thanks a million!"),
    # only where a person helped
    "gratitude_help": ("Really grateful for the help.", "Thanks, {agent}!",
                       "Thank you for sorting it out so quickly."),
    "relief": ("What a relief.", "Such a relief after all the stress of moving.",
               "I was so relieved when it all worked out."),
    "surprise": ("Pleasantly surprised!", "Didn't expect it to be this good.",
                 "Wow, did not see that coming, in a good way."),
}  # fmt: skip
EMOTIONS_BY_POLARITY: dict[Polarity, tuple[str, ...]] = {
    "pos": ("delight", "gratitude", "gratitude_help", "relief", "surprise"),
    "neg": ("frustration", "confusion", "anxiety"),
}
# Anxiety and relief are about an order or money; they read oddly for browsing or a store visit.
NOT_AN_ORDEAL = {"website", "app", "store", "product", "wishlist"}
HELPED_BY_A_PERSON = {"support", "store", "returns", "delivery", "delivery_swift"}
# Themes about an order on its way (delivery times, money back).
ORDER_THEMES = {"checkout", "delivery", "delivery_swift", "returns", "support"}
NEEDS: dict[Polarity, dict[str, tuple[str, ...]]] = {
    "pos": {
        "functional": ("Great value for {price}.", "Does exactly what I wanted.",
                       "Fair price for the quality.", "Quick and easy, which is all I want."),
        "functional_order": ("It arrived when I needed it.", "Everything was ready in time for "
                             "the weekend.", "Fast, which is what matters to me."),
        "emotional": ("I felt valued as a customer.", "They actually listened to me.",
                      "Made the whole thing stress-free.", "Felt like they genuinely cared.",
                      "I felt looked after."),
        "social": ("Proud to recommend Northwind to my friends.",
                   "I'll tell all my friends about you.",
                   "Love shopping with a company that cares about the planet.",
                   "Our guests keep complimenting the {product_living}.",
                   "Already recommended you to my sister."),
    },
    "neg": {
        "functional": ("For {price} I expected much better.", "I just need it to work.",
                       "I've wasted hours on this.", "It's not worth the money."),
        "functional_order": ("I needed it before the weekend and that's not happening.",
                             "At this price it should at least arrive on time.",
                             "I just want my money or my order, whichever comes first."),
        "emotional": ("Nobody listened to me.", "The whole thing has been so stressful.",
                      "I feel completely ignored.", "I felt like a number, not a customer.",
                      "It feels like nobody cares."),
        "social": ("I was embarrassed in front of my guests.",
                   "I'll be telling my friends to shop elsewhere.",
                   "I used to recommend you, not anymore.",
                   "So much for a company that cares about the planet, the packaging was absurd.",
                   "My family keeps asking why I still shop here."),
    },
}  # fmt: skip
CONNECTORS: dict[Polarity, tuple[str, ...]] = {
    "pos": ("Also, ", "And ", "Plus, ", "On top of that, ", "What's more, "),
    "neu": ("Also, ", "Otherwise, ", "Apart from that, "),
    "neg": ("On top of that, ", "And ", "Also, ", "To make it worse, ", "Plus, "),
}
PII_SENTENCES = (
    "You can reach me at {email}.",
    "My email is {email} if you need to get back to me.",
    "Please call me on {phone}, I'm home after 6pm.",
    "My number is {phone}.",
    "I paid with card {card} and want to know what was charged.",
    "The card I used was {card}, please check the payment.",
    "Contact me at {email} or {phone}.",
    "This is {fullname}, my email is {email}.",
)
SOCIAL_TAGS: dict[Polarity, tuple[str, ...]] = {
    "pos": (" #NorthwindHome", " #happyhome", " #newsofa", " #homedecor"),
    "neu": (" #NorthwindHome", ""),
    "neg": (" #NorthwindHome", " #fail", " #customerservice", " #neveragain"),
}

# --------------------------------------------------------------------------------------------
# Texts in other languages (~1% of customer rows; language left empty for detection).
# --------------------------------------------------------------------------------------------

FOREIGN: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "es": {
        "website": {
            "pos": (
                "La página web es muy fácil de usar y encontré la mesa que buscaba en dos minutos.",
                "Las fotos de la web son muy fieles a la realidad.",
            ),
            "neg": (
                "La web es lentísima y el buscador no encuentra nada.",
                "En la web ponía que había existencias y luego no era verdad.",
            ),
        },
        "app": {
            "pos": (
                "La aplicación funciona de maravilla y comprar es rapidísimo.",
                "Me encanta la app, es muy intuitiva.",
            ),
            "neg": (
                "La aplicación se cierra sola cada vez que intento pagar.",
                "La app va lentísima y no carga las fotos.",
            ),
        },
        "checkout": {
            "pos": (
                "El pago fue rápido y sin problemas.",
                "Pude pagar a plazos sin complicaciones.",
            ),
            "neg": (
                "Me cobraron dos veces el mismo pedido y nadie me devuelve el dinero.",
                "El código de descuento no funcionó al pagar.",
            ),
        },
        "delivery": {
            "pos": (
                "El pedido llegó antes de lo previsto y los repartidores fueron muy amables.",
                "Entrega puntual y el sofá llegó en perfecto estado.",
            ),
            "neg": (
                "El pedido llegó con tres días de retraso y nadie me avisó.",
                "La caja llegó abollada y la mesa está rayada.",
            ),
            "swift": (
                "Desde que trabajan con SwiftShip las entregas llegan tarde y sin seguimiento.",
                "El repartidor de SwiftShip fue muy grosero y dejó la caja en la calle.",
            ),
        },
        "returns": {
            "pos": (
                "Devolví la lámpara en la tienda sin ningún problema.",
                "El reembolso llegó en dos días, muy bien.",
            ),
            "neg": (
                "Llevo tres semanas esperando el reembolso.",
                "Nadie vino a recoger la devolución, dos veces.",
            ),
        },
        "support": {
            "pos": (
                "La agente del chat fue muy amable y me lo solucionó enseguida.",
                "Atención al cliente excelente, me llamaron cuando dijeron.",
            ),
            "neg": (
                "Llevo una hora al teléfono y nadie me atiende.",
                "Atención al cliente pésima, siempre me dan la misma respuesta.",
            ),
        },
        "store": {
            "pos": (
                "El personal de la tienda fue muy amable y me ayudó a elegir.",
                "La tienda es preciosa y está muy bien organizada.",
            ),
            "neg": (
                "En la tienda no había nadie para atender y las colas eran enormes.",
                "La tienda estaba desordenada y sin precios.",
            ),
        },
        "opener": {
            "pos": ("", "¡Muy contenta! ", "Todo perfecto. "),
            "neg": ("", "Muy decepcionado. ", "Fatal. "),
        },
        "closer": {
            "pos": ("", " Se lo recomiendo a mis amigos.", " Gracias, Northwind."),
            "neg": ("", " Quiero una solución ya.", " No volveré a comprar aquí."),
        },
    },
    "de": {
        "website": {
            "pos": (
                "Die Website ist übersichtlich und ich habe sofort gefunden, was ich gesucht habe.",
                "Sehr gute Produktfotos und genaue Maße auf der Website.",
            ),
            "neg": (
                "Die Suche auf der Website ist völlig nutzlos.",
                "Die Website ist extrem langsam und stürzt ständig ab.",
            ),
        },
        "app": {
            "pos": (
                "Die App ist super schnell und einfach zu bedienen.",
                "Tolle App, Bestellen dauert nur eine Minute.",
            ),
            "neg": (
                "Die App stürzt bei jedem Öffnen ab.",
                "Die App lädt keine Bilder und ist furchtbar langsam.",
            ),
        },
        "checkout": {
            "pos": (
                "Die Bezahlung hat problemlos und schnell funktioniert.",
                "Der Gutscheincode wurde sofort akzeptiert.",
            ),
            "neg": (
                "Mir wurde die Bestellung doppelt abgebucht und niemand hilft mir.",
                "Der Bezahlvorgang bricht jedes Mal ab.",
            ),
        },
        "delivery": {
            "pos": (
                "Die Lieferung kam pünktlich und die Fahrer waren sehr freundlich.",
                "Alles kam früher als angekündigt und perfekt verpackt.",
            ),
            "neg": (
                "Die Lieferung kam drei Tage zu spät, ohne jede Information.",
                "Der Karton war beschädigt und der Tisch ist zerkratzt.",
            ),
            "swift": (
                "Seit SwiftShip liefert, kommt alles zu spät und die Sendungsverfolgung "
                "zeigt nichts an.",
                "Der Fahrer von SwiftShip war unhöflich und hat das Paket einfach vor die "
                "Tür geworfen.",
            ),
        },
        "returns": {
            "pos": (
                "Die Rücksendung war ganz einfach und das Geld kam schnell zurück.",
                "Umtausch im Laden ohne Probleme, sehr kulant.",
            ),
            "neg": (
                "Ich warte seit drei Wochen auf meine Rückerstattung.",
                "Die Abholung der Rücksendung wurde zweimal verpasst.",
            ),
        },
        "support": {
            "pos": (
                "Der Kundenservice war sehr freundlich und hat mein Problem sofort gelöst.",
                "Schnelle und kompetente Hilfe im Chat, vielen Dank.",
            ),
            "neg": (
                "Seit einer Stunde in der Warteschleife, das ist eine Frechheit.",
                "Der Kundenservice antwortet einfach nicht auf meine E-Mails.",
            ),
        },
        "store": {
            "pos": (
                "Das Personal im Laden war sehr hilfsbereit und freundlich.",
                "Schöner Laden mit vielen Ideen für die Wohnung.",
            ),
            "neg": (
                "Im Laden war niemand zu finden, der helfen konnte.",
                "Lange Schlangen und nur eine Kasse offen.",
            ),
        },
        "opener": {
            "pos": ("", "Super! ", "Sehr zufrieden. "),
            "neg": ("", "Sehr enttäuscht. ", "Unmöglich. "),
        },
        "closer": {
            "pos": ("", " Ich empfehle Northwind gerne weiter.", " Vielen Dank!"),
            "neg": ("", " Ich erwarte eine Lösung.", " Nie wieder."),
        },
    },
    "fr": {
        "website": {
            "pos": (
                "Le site est très clair et j'ai trouvé ce que je cherchais en deux minutes.",
                "Les photos du site sont fidèles et les dimensions bien indiquées.",
            ),
            "neg": (
                "La recherche sur le site ne fonctionne pas du tout.",
                "Le site est très lent et plante sans arrêt.",
            ),
        },
        "app": {
            "pos": (
                "L'application est rapide et très agréable à utiliser.",
                "Super appli, commander prend une minute.",
            ),
            "neg": (
                "L'application plante à chaque ouverture.",
                "L'appli est très lente et ne charge pas les photos.",
            ),
        },
        "checkout": {
            "pos": (
                "Le paiement s'est fait rapidement et sans souci.",
                "Le code promo a marché tout de suite.",
            ),
            "neg": (
                "J'ai été débité deux fois pour la même commande.",
                "Le paiement échoue à chaque fois, c'est pénible.",
            ),
        },
        "delivery": {
            "pos": (
                "Livraison à l'heure et les livreurs étaient très sympathiques.",
                "Tout est arrivé plus tôt que prévu et parfaitement emballé.",
            ),
            "neg": (
                "La livraison avait trois jours de retard et personne ne m'a prévenu.",
                "Le carton était abîmé et la table est rayée.",
            ),
            "swift": (
                "Depuis que SwiftShip s'occupe des livraisons, tout arrive en retard et "
                "sans suivi.",
                "Le livreur de SwiftShip a été très impoli et a laissé le colis sous la pluie.",
            ),
        },
        "returns": {
            "pos": (
                "Le retour en magasin s'est fait sans aucune question.",
                "Remboursement reçu en deux jours, parfait.",
            ),
            "neg": (
                "J'attends mon remboursement depuis trois semaines.",
                "Personne n'est venu chercher le retour, deux fois de suite.",
            ),
        },
        "support": {
            "pos": (
                "Le service client a été très gentil et a réglé le problème tout de suite.",
                "Réponse rapide et efficace sur le chat, merci beaucoup.",
            ),
            "neg": (
                "Une heure d'attente au téléphone, c'est inadmissible.",
                "Le service client ne répond jamais à mes e-mails.",
            ),
        },
        "store": {
            "pos": (
                "Le personnel du magasin était très accueillant et de bon conseil.",
                "Magnifique magasin, plein d'idées pour la maison.",
            ),
            "neg": (
                "Personne pour nous aider dans le magasin.",
                "Une seule caisse ouverte et une queue interminable.",
            ),
        },
        "opener": {
            "pos": ("", "Génial ! ", "Très contente. "),
            "neg": ("", "Très déçu. ", "Franchement nul. "),
        },
        "closer": {
            "pos": ("", " Je recommande Northwind à mes amis.", " Merci beaucoup !"),
            "neg": ("", " J'attends une solution.", " Plus jamais."),
        },
    },
}

# --------------------------------------------------------------------------------------------
# Employee phrase banks ({tool}, {place}, {task}, {manager_role} come from the team).
# --------------------------------------------------------------------------------------------

EMPLOYEE_ASPECTS: dict[str, dict[Polarity, tuple[str, ...]]] = {
    "onboarding": {
        "pos": (
            "My onboarding was really well organised, I had a buddy from day one.",
            "Everyone on the {place} made me feel welcome in my first week.",
            "Training on the {tool} was clear and hands-on.",
            "My login, uniform and schedule were ready on day one, impressive.",
            "The induction gave me a real picture of how {task} works here.",
            "My {manager_role} checked in with me every day of my first week.",
        ),
        "neu": (
            "Onboarding was okay, a lot of slides.",
            "First weeks were fine, still learning the {tool}.",
            "The induction covered the basics.",
            "Still settling in, the first month has been fine.",
        ),
        "neg": (
            "Nobody showed me how the {tool} works, I had to figure it out alone.",
            "My first week was chaotic, no one knew I was starting.",
            "Onboarding was two videos and then straight into {task}.",
            "Still waiting for proper system access after three weeks, it's demotivating.",
            "I was left on my own on the {place} on my second day.",
        ),
    },
    "day_to_day": {
        "pos": (
            "I really like my team, we help each other out on the {place}.",
            "Good week, {task} went smoothly and we hit our targets.",
            "There's a real team spirit here, I feel like I belong.",
            "Proud of what we got done this week.",
            "The workload is busy but manageable.",
            "The atmosphere on the {place} is friendly and relaxed.",
            "We celebrated a great month with the whole team, felt good.",
        ),
        "neu": (
            "Normal week, nothing special.",
            "Busy with {task}, otherwise fine.",
            "The workload is okay, some days are longer than others.",
            "Same as usual on the {place}.",
            "An average week, a few hiccups with {task}.",
        ),
        "neg": (
            "We're short-staffed and everyone is stretched thin.",
            "Too much {task} and not enough people to do it.",
            "The air conditioning is broken again and nobody fixes it.",
            "I feel disconnected from the rest of the team.",
            "Constant interruptions make it hard to get anything done.",
            "Targets for {task} keep going up with no extra help.",
        ),
    },
    "manager": {
        "pos": (
            "My {manager_role} actually listens and backs us up.",
            "Great one-to-ones with my {manager_role}, I feel heard.",
            "My {manager_role} recognised my work in front of the whole team, I felt valued.",
            "Clear priorities from my {manager_role} this week.",
            "My {manager_role} is supportive and fair with everyone.",
        ),
        "neu": (
            "Had my one-to-one, it was fine.",
            "My {manager_role} is okay, we don't talk much.",
            "Communication from my {manager_role} is fine most of the time.",
        ),
        "neg": (
            "My {manager_role} cancels every one-to-one.",
            "I raised the same issue three times and my {manager_role} ignored it.",
            "Feedback from my {manager_role} only comes when something goes wrong.",
            "Decisions get made above our heads without any explanation.",
            "My {manager_role} plays favourites and everyone can see it.",
        ),
    },
    "career": {
        "pos": (
            "I've been offered {manager_role} training, really motivating.",
            "Loving the development budget, just finished a course.",
            "I can see a clear path to grow here.",
            "Got promoted this month, proud to work here.",
            "My mentor is helping me plan the next step in my career.",
        ),
        "neu": (
            "Career conversations happen once a year, that's about it.",
            "Not sure where I'll be in two years, but okay for now.",
            "There are some training courses, I haven't looked at them yet.",
        ),
        "neg": (
            "No clear path to promotion, people leave to get ahead.",
            "The training budget was cut again.",
            "I've been doing the same thing for three years with no growth.",
            "Internal jobs always go to outside hires.",
        ),
    },
    "pay_benefits": {
        "pos": (
            "The staff discount is great, I furnished half my flat with it.",
            "The pay rise this year was fair.",
            "The health plan is genuinely good.",
            "Love the extra day off for my birthday.",
        ),
        "neu": (
            "Pay is average for the area.",
            "Benefits are standard, nothing special.",
            "Pay is fine, nothing to complain about, nothing to brag about.",
        ),
        "neg": (
            "Pay hasn't kept up with rent, I'm struggling this month.",
            "Our pay is below what competitors offer for the same job.",
            "The bonus scheme is impossible to understand.",
            "Payslip errors again this month, the second time this quarter.",
        ),
    },
    "tools": {
        "pos": (
            "The new {tool} is so much faster.",
            "IT fixed my {tool} problem within an hour.",
            "Finally got decent {tool}, it makes {task} much easier.",
        ),
        "neu": (
            "The {tool} works most of the time.",
            "The {tool} is fine, could be faster.",
            "We're getting used to the updated {tool}.",
        ),
        "neg": (
            "The {tool} crashes several times a day.",
            "Half the {tool} are broken and nobody replaces them.",
            "We waste hours because the {tool} is so slow.",
            "The {tool} went down again during the busiest hour.",
        ),
    },
}
EMPLOYEE_FEELINGS: dict[Polarity, tuple[str, ...]] = {
    "pos": ("I feel valued here.", "Proud to be part of this team.",
            "Love working with these people.", "Proud to tell friends where I work.",
            "Feels like we're in it together.", "Happy to come to work most days."),
    "neu": ("It's a job.", "Nothing more to say this week."),
    "neg": ("Morale is low.", "I don't feel heard.", "Thinking about leaving.",
            "It's stressful and it shows.", "I feel like an outsider on my own team.",
            "I'm embarrassed to recommend this place to friends."),
}  # fmt: skip
EMPLOYEE_CLOSERS: dict[Polarity, tuple[str, ...]] = {
    "pos": ("Thanks for asking.", "Keep it up.", "Good stuff."),
    "neu": ("Thanks.", "That's it from me."),
    "neg": ("Please fix this.", "Hope someone actually reads these.", "Something has to change."),
}
# The warehouse shift-pattern change (2026-W40): (touchpoint, sentence).
ROTA_LINES: dict[Polarity, tuple[tuple[str, str], ...]] = {
    "neg": (
        ("day_to_day", "The new rota is killing us, I barely see my kids."),
        ("day_to_day", "Forced overtime three weeks in a row, I'm exhausted."),
        ("day_to_day", "Mandatory weekend shifts with four days' notice is not okay."),
        (
            "day_to_day",
            "Since the new rota started half the team is exhausted and looking for other jobs.",
        ),
        ("manager", "We told them the new rota wouldn't work and management doesn't listen."),
        ("day_to_day", "Nights then earlies with one day off in between, everyone is exhausted."),
        ("day_to_day", "I didn't sign up for mandatory weekend shifts."),
        ("manager", "Management doesn't listen, they just keep adding forced overtime."),
        ("manager", "Forced overtime again this week and nobody even asked if we could do it."),
        ("day_to_day", "The new rota means I work every Saturday now, my family life is gone."),
        ("day_to_day", "Picking targets went up and so did the forced overtime."),
        ("day_to_day", "People are calling in sick because they're exhausted from the new rota."),
        (
            "pay_benefits",
            "Forced overtime on a weekend and it's not even paid at the weekend rate.",
        ),
        ("manager", "We raised the new rota at the team meeting, management doesn't listen."),
        ("day_to_day", "Mandatory weekend shifts on top of {task} all week, I'm exhausted."),
        (
            "manager",
            "Our {manager_role} just says the new rota comes from head office and "
            "management doesn't listen.",
        ),
    ),
    "neu": (
        ("day_to_day", "The new rota takes some getting used to."),
        ("day_to_day", "Still adjusting to the new rota."),
        ("day_to_day", "Not sure yet about the new rota, the weekend shifts are hard."),
    ),
}
ROTA_FEELINGS = ("Morale on the {place} is at rock bottom.", "Several of us are looking for "
                 "other jobs.", "Nobody is enjoying this.", "It's really stressful.")  # fmt: skip

# Words a typo may never touch: every story keyword, so keyword counts stay exact.
_PROTECTED = {
    word.lower()
    for story in STORIES
    for phrase in (*story.keywords, *story.absent_before)
    for word in re.findall(r"[\w']+", phrase)
}

# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------


class _Slots(dict[str, str]):
    """Slot values for one text, drawn on first use so a product and its price agree."""

    def __init__(self, rng: random.Random, when: datetime, team: str | None = None) -> None:
        super().__init__()
        self._rng = rng
        self._when = when
        self._team = team
        self._product: Product | None = None

    def __missing__(self, key: str) -> str:
        rng = self._rng
        if key == "price" or key.startswith("product"):
            # "{product_legs}" asks for a product with legs; once chosen, the row keeps it.
            if self._product is None:
                tag = key.partition("_")[2]
                fitting = [p for p in PRODUCTS if not tag or tag in p[3]]
                if not fitting:
                    raise KeyError(f"no demo product is tagged {tag!r} (slot {{{key}}})")
                self._product = rng.choice(fitting)
                name, lo, hi, _ = self._product
                self["product"] = name
                self["price"] = f"${rng.randrange(lo, hi + 1, 10):,}"
            if key not in self:
                self[key] = self._product[0]
            return self[key]
        if key == "order":
            value = f"#{rng.randint(4_100_000, 4_999_999)}"
        elif key == "days":
            value = str(rng.randint(3, 9))
        elif key == "date":
            day = self._when.date() - timedelta(days=rng.randint(2, 12))
            value = f"{day:%b} {day.day}"
        elif key == "future_date":
            day = self._when.date() + timedelta(days=rng.randint(3, 14))
            value = f"{day:%b} {day.day}"
        elif key == "city":
            value = rng.choice(CITIES)
        elif key == "agent":
            value = rng.choice(AGENTS)
        elif key == "minutes":
            value = str(rng.choice((25, 35, 40, 45, 50, 55, 70, 90)))
        elif key in ("email", "fullname"):
            first, last = rng.choice(PII_NAMES)
            self["fullname"] = f"{first.title()} {last.title()}"
            sep = rng.choice((".", "_", ""))
            self["email"] = f"{first}{sep}{last}{rng.choice(('', '84', '1990'))}@example.com"
            return self[key]
        elif key == "phone":
            n = rng.randint(100, 199)
            value = rng.choice(
                (f"+1 415 555 0{n}", f"(312) 555-0{n}", f"415-555-0{n}", f"+1 (646) 555 0{n}")
            )
        elif key == "card":
            value = rng.choice(TEST_CARDS)
        elif self._team is not None and key in ("tool", "place", "task", "manager_role"):
            value = rng.choice(getattr(TEAMS[self._team], key))
        else:
            raise KeyError(f"unknown slot {{{key}}} in a demo phrase")
        self[key] = value
        return value


def _fill(template: str, slots: _Slots) -> str:
    text = template.format_map(slots)
    return text[:1].upper() + text[1:]


_KEEP_CAPITAL = {"I", "I'm", "I've", "I'll", "I'd", "Northwind", "Apple", "AR", "IT", "CRM",
                 "CI", *CITIES, *AGENTS, *(p[0].split()[0] for p in PRODUCTS)}  # fmt: skip


def _lower_first(sentence: str) -> str:
    """Lowercase the first word so the sentence can follow a connector, unless it is a name."""
    first = sentence.split(" ", 1)[0].rstrip(",.!?'")
    if first in _KEEP_CAPITAL or not first[:1].isupper() or not first[1:].islower():
        return sentence
    return sentence[:1].lower() + sentence[1:]


def _join(
    sentences: Sequence[str], rng: random.Random, polarity: Polarity, connect: int = 0
) -> str:
    """Join sentences; the one at index ``connect`` (a second aspect) may get "Also, "."""
    out = sentences[0]
    for i, sentence in enumerate(sentences[1:], start=1):
        if i == connect and rng.random() < 0.4:
            sentence = rng.choice(CONNECTORS[polarity]) + _lower_first(sentence)
        out += " " + sentence
    return out


def _roughen(text: str, rng: random.Random) -> str:
    """Make a text look typed in a hurry: case, apostrophes, a swapped letter, text-speak."""
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.randrange(6)
        if kind == 0:
            text = text.lower()
        elif kind == 1:
            # not "doesn't": it is part of a story keyword ("management doesn't listen")
            text = re.sub(r"\b(don|can|isn|wasn|won|didn|haven)'t\b", r"\1t", text)
            text = re.sub(r"\bI'm\b", rng.choice(("Im", "im")), text)
            text = text.replace("it's", "its")
        elif kind == 2:
            words = text.split(" ")
            spots = [
                i
                for i, w in enumerate(words)
                if len(w) >= 5 and w.isalpha() and w.islower() and w not in _PROTECTED
            ]
            if spots:
                i = rng.choice(spots)
                w = words[i]
                j = rng.randrange(1, len(w) - 2)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
                text = " ".join(words)
        elif kind == 3:
            text = text.rstrip(".")
        elif kind == 4:
            text = re.sub(r"\byou\b", "u", text)
            text = re.sub(r"\bplease\b", "pls", text)
            text = re.sub(r"\bbecause\b", "cos", text)
        else:
            text = re.sub(r"[.!]$", rng.choice(("!!", "!!!", "...")), text)
    return text


def _polarity_mix(rng: random.Random, n: int, shares: tuple[float, float, float]) -> list[Polarity]:
    """Exactly the planned shares of pos / neu / neg for ``n`` rows, in random order.

    Drawing each row's polarity independently would add +-0.1 of sampling noise to a weekly mean
    of ~50 rows, enough for an alert on the quiet week; the stories must be the only changes.
    """
    exact = [n * share / sum(shares) for share in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    mix = [p for p, c in zip(("pos", "neu", "neg"), counts, strict=True) for _ in range(c)]
    rng.shuffle(mix)
    return mix


def _rating(rng: random.Random, scale: str, polarity: Polarity) -> str:
    """A score that agrees with the text, with the odd generous or grumpy outlier."""
    weights: tuple[int, ...]
    if scale == "nps":
        weights = {
            "pos": (0, 0, 0, 0, 0, 0, 0, 2, 10, 40, 48),
            "neu": (0, 0, 0, 1, 3, 8, 25, 38, 20, 4, 1),
            "neg": (14, 10, 13, 16, 16, 15, 9, 4, 2, 1, 0),
        }[polarity]
        return str(rng.choices(range(11), weights=weights)[0])
    weights = {
        "pos": (0, 1, 3, 28, 68),
        "neu": (2, 14, 60, 22, 2),
        "neg": (58, 32, 8, 2, 0),
    }[polarity]
    return str(rng.choices(range(1, 6), weights=weights)[0])


def _when(rng: random.Random, week: int, day_weights: tuple[float, ...], hours: Sequence[int],
          hour_weights: Sequence[float]) -> datetime:  # fmt: skip
    day = rng.choices(range(7), weights=day_weights)[0]
    hour = rng.choices(hours, weights=hour_weights)[0]
    monday = FIRST_MONDAY + timedelta(weeks=week, days=day)
    return datetime(monday.year, monday.month, monday.day, hour, rng.randrange(60))


def _word_count(text: str) -> int:
    return len(text.split())


@dataclass
class _Draft:
    when: datetime
    fields: dict[str, str]


class _Generator:
    """Holds the RNG and the per-author facts; builds the rows week by week."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        # Few customers write often, most write once: weight 1/(rank + 300).
        self.customer_cum: list[float] = []
        total = 0.0
        for rank in range(CUSTOMER_POOL):
            total += 1.0 / (rank + 300)
            self.customer_cum.append(total)
        self.customer_ids = list(range(1, CUSTOMER_POOL + 1))
        rng.shuffle(self.customer_ids)
        labels = [label for label, _ in SEGMENTS]
        weights = [weight for _, weight in SEGMENTS]
        self.customer_segment = {
            cid: rng.choices(labels, weights=weights)[0] for cid in range(1, CUSTOMER_POOL + 1)
        }
        self.team_members: dict[str, list[int]] = {}
        next_id = 1
        for team, spec in TEAMS.items():
            self.team_members[team] = list(range(next_id, next_id + spec.pool))
            next_id += spec.pool
        tenure_labels = [label for label, _ in TENURE]
        tenure_weights = [weight for _, weight in TENURE]
        self.tenure = {
            eid: rng.choices(tenure_labels, weights=tenure_weights)[0] for eid in range(1, next_id)
        }
        self.text_uses: Counter[str] = Counter()

    # -- customers ---------------------------------------------------------------------------

    def customer_week(self, week: int, per_week: int) -> list[_Draft]:
        rng = self.rng
        base = per_week * WEEK_FACTOR[week]
        drafts: list[_Draft] = []
        for touchpoint, share in TOUCHPOINT_SHARE.items():
            expected = base * share
            if touchpoint == "delivery" and week >= COURIER_WEEK:
                expected *= DELIVERY_SURGE
            count = round(expected * rng.uniform(0.95, 1.05))
            main_theme = touchpoint
            if touchpoint == "delivery" and week >= COURIER_WEEK:
                main_theme = "delivery_swift"
            n_product = round(count * PRODUCT_USE_SHARE) if touchpoint in PRODUCT_SOURCE else 0
            for theme, n in ((main_theme, count - n_product), ("product", n_product)):
                for polarity in _polarity_mix(rng, n, CUSTOMER_POLARITY[theme]):
                    drafts.append(self.customer_row(week, touchpoint, theme, polarity))
        if week >= WISHLIST_WEEK:
            n = WISHLIST_PER_WEEK[week - WISHLIST_WEEK] + rng.randint(-2, 2)
            for polarity in _polarity_mix(rng, n, CUSTOMER_POLARITY["wishlist"]):
                drafts.append(self.customer_row(week, "app", "wishlist", polarity))
        return drafts

    def customer_row(self, week: int, touchpoint: str, theme: str, polarity: Polarity) -> _Draft:
        rng = self.rng
        stage = "use" if theme == "product" else STAGE[touchpoint]
        channel_key = theme if theme in CHANNELS else touchpoint
        names, weights = zip(*CHANNELS[channel_key], strict=True)
        channel = rng.choices(names, weights=weights)[0]
        if channel == "app_review" and touchpoint != "app":
            channel = "review"
        day_key = touchpoint if touchpoint in DAY_WEIGHTS else "default"
        when = _when(rng, week, DAY_WEIGHTS[day_key], CUSTOMER_HOURS, CUSTOMER_HOUR_WEIGHTS)
        slots = _Slots(rng, when)

        language = "en"
        # Wishlist rows stay English and keep their touchpoint; delivery rows always keep theirs.
        if theme != "wishlist" and rng.random() < FOREIGN_SHARE:
            language = rng.choice(("es", "de", "fr"))
            if polarity == "neu":
                polarity = rng.choice(("pos", "neg"))
            text = self.foreign_text(language, touchpoint, polarity, week)
        else:
            text = self.unique(
                lambda: self.customer_text(touchpoint, theme, polarity, channel, slots)
            )

        ratings = {"nps": "", "csat": "", "stars": ""}
        if channel == "survey":
            ratings["nps"] = _rating(rng, "nps", polarity)
        elif channel in ("review", "app_review"):
            ratings["stars"] = _rating(rng, "stars", polarity)
        elif channel in ("ticket", "chat"):
            ratings["csat"] = _rating(rng, "csat", polarity)

        shown_touchpoint = touchpoint
        if (
            touchpoint != "delivery"
            and theme != "wishlist"
            and rng.random() < EMPTY_TOUCHPOINT_SHARE
        ):
            shown_touchpoint, stage = "", ""
        author = self.customer_ids[
            rng.choices(range(CUSTOMER_POOL), cum_weights=self.customer_cum)[0]
        ]
        return _Draft(
            when,
            {
                "audience": "customer",
                "channel": channel,
                "touchpoint": shown_touchpoint,
                "journey_stage": stage,
                "segment": self.customer_segment[author],
                "org_unit": "",
                "language": "en" if language == "en" else "",  # the rest is for detection
                "text": text,
                **ratings,
                "author": f"cust-{author:05d}",
            },
        )

    def customer_text(
        self, touchpoint: str, theme: str, polarity: Polarity, channel: str, slots: _Slots
    ) -> str:
        rng = self.rng
        bank = ASPECTS[theme]
        form = rng.choices(("short", "medium", "long"), weights=(25, 45, 30))[0]
        main_template = rng.choice(bank[polarity])
        main = _fill(main_template, slots)
        sentences = [main]
        if theme == "product" and rng.random() < 0.5:
            sentences.append(_fill(rng.choice(PRODUCT_SOURCE[touchpoint]), slots))
        conceded = False
        if form != "short" and polarity != "neu" and rng.random() < 0.15:
            # A concession from the other side ("X was lovely, but ..."): real feedback is mixed.
            other = "neg" if polarity == "pos" else "pos"
            concession_theme = rng.choice(CONCESSION_THEMES[theme])
            if other in ASPECTS[concession_theme]:
                concession = _fill(rng.choice(ASPECTS[concession_theme][other]), slots)
                sentences[0] = f"{concession.rstrip('.!?')}, but {_lower_first(main)}"
                conceded = True
        connect = 0
        if form == "long":
            # Name the product once; a second sentence about it reads like a template.
            second = [
                t
                for t in bank[polarity]
                if t != main_template and not ("{product" in t and "product" in slots)
            ]
            if second:
                connect = len(sentences)
                sentences.append(_fill(rng.choice(second), slots))
        if form != "short" and polarity != "neu":
            if rng.random() < 0.6:
                kinds = [
                    k
                    for k in EMOTIONS_BY_POLARITY[polarity]
                    if not (k in ("anxiety", "relief") and theme in NOT_AN_ORDEAL)
                    and not (k == "gratitude_help" and theme not in HELPED_BY_A_PERSON)
                ]
                sentences.append(_fill(rng.choice(EMOTIONS[rng.choice(kinds)]), slots))
            if rng.random() < (0.6 if form == "long" else 0.35):
                need = rng.choice(("functional", "emotional", "social"))
                if need == "functional" and theme in ORDER_THEMES and rng.random() < 0.6:
                    need = "functional_order"
                sentences.append(_fill(rng.choice(NEEDS[polarity][need]), slots))
        if rng.random() < PII_SHARE and channel != "app_review":
            sentences.append(_fill(rng.choice(PII_SENTENCES), slots))
        if form != "short" and rng.random() < 0.45:
            sentences.append(rng.choice(CLOSERS[polarity]))

        text = _join(sentences, rng, polarity, connect)
        if form != "short" and rng.random() < 0.45:
            openers = APP_REVIEW_TITLES[polarity] if channel == "app_review" else OPENERS[polarity]
            if conceded:  # "Credit where it's due, <the complaint>, but ..." reads backwards
                openers = tuple(o for o in openers if not o.endswith(", "))
            opener = rng.choice(openers)
            text = opener + (_lower_first(text) if opener.endswith(", ") else text)
        text = self.channel_habits(text, channel, polarity, slots)
        while _word_count(text) > 60 and len(sentences) > 1:
            sentences.pop()
            text = _join(sentences, rng, polarity, connect)
        while _word_count(text) < 5:
            text = f"{text} {rng.choice(CLOSERS[polarity])}"
        if rng.random() < 0.1:
            text = _roughen(text, rng)
        return text

    def channel_habits(self, text: str, channel: str, polarity: Polarity, slots: _Slots) -> str:
        rng = self.rng
        if channel == "social":
            if rng.random() < 0.5:
                text = "@NorthwindHome " + text
            if rng.random() < 0.5:
                text += rng.choice(SOCIAL_TAGS[polarity])
        elif channel == "chat" and rng.random() < 0.3:
            text = rng.choice(("hi, ", "Hello, ", "hey ")) + _lower_first(text)
        elif channel == "ticket" and "#" not in text and rng.random() < 0.25:
            text = (
                rng.choice(("Order {order}: ", "Re: order {order}. ", "Ref {order}. ")).format(
                    order=slots["order"]
                )
                + text
            )
        return text

    def foreign_text(self, language: str, touchpoint: str, polarity: Polarity, week: int) -> str:
        rng = self.rng
        bank = FOREIGN[language]
        lines = bank[touchpoint][polarity]
        if touchpoint == "delivery" and polarity == "neg" and week >= COURIER_WEEK:
            lines = bank["delivery"]["swift"]
        body = list(lines)
        rng.shuffle(body)
        body = body[: rng.choice((1, 1, 2))]
        return (
            rng.choice(bank["opener"][polarity])
            + " ".join(body)
            + rng.choice(bank["closer"][polarity])
        )

    def unique(self, make: Callable[[], str]) -> str:
        """Draw a text, redrawing when it has already been used five times."""
        text = make()
        for _ in range(20):
            if self.text_uses[text] < 5:
                break
            text = make()
        else:
            text = f"{text} {self.rng.choice(CLOSERS['neu'])}"
        self.text_uses[text] += 1
        return text

    # -- employees ---------------------------------------------------------------------------

    def employee_week(self, week: int, per_week: int) -> list[_Draft]:
        rng = self.rng
        drafts: list[_Draft] = []
        for team, spec in TEAMS.items():
            expected = per_week * WEEK_FACTOR[week] * spec.share
            if team == "warehouse" and week >= ROTA_WEEK:
                expected *= ROTA_RESPONSE_UPLIFT
            count = min(round(expected * rng.uniform(0.93, 1.07)), len(self.team_members[team]))
            rota = team == "warehouse" and week >= ROTA_WEEK
            polarities = _polarity_mix(
                rng, count, TEAM_POLARITY["warehouse_rota" if rota else team]
            )
            # Each person answers at most once a week.
            for eid, polarity in zip(
                rng.sample(self.team_members[team], count), polarities, strict=True
            ):
                drafts.append(self.employee_row(week, team, eid, polarity))
        return drafts

    def employee_row(self, week: int, team: str, eid: int, polarity: Polarity) -> _Draft:
        rng = self.rng
        tenure = self.tenure[eid]
        rota = team == "warehouse" and week >= ROTA_WEEK
        channel = rng.choices(("pulse", "survey"), weights=(75, 25))[0]
        day_key = "shifts" if team in ("stores", "warehouse") else "office"
        when = _when(rng, week, DAY_WEIGHTS[day_key], EMPLOYEE_HOURS, EMPLOYEE_HOUR_WEIGHTS)
        slots = _Slots(rng, when, team)

        touchpoints = ["day_to_day", "manager", "career", "pay_benefits", "tools"]
        weights = [4.0, 2.5, 1.5, 1.5, 1.5]
        if tenure == "<1y":
            touchpoints.append("onboarding")
            weights.append(3.0)
        touchpoint = rng.choices(touchpoints, weights=weights)[0]

        story_line = None
        if rota and polarity in ROTA_LINES and rng.random() < (0.85 if polarity == "neg" else 0.4):
            touchpoint, story_line = rng.choice(ROTA_LINES[polarity])
        text = self.unique(
            lambda: self.employee_text(touchpoint, polarity, channel, slots, story_line)
        )
        return _Draft(
            when,
            {
                "audience": "employee",
                "channel": channel,
                "touchpoint": touchpoint,
                "journey_stage": EMPLOYEE_STAGE[touchpoint],
                "segment": tenure,
                "org_unit": team,
                "language": "en",
                "text": text,
                "nps": _rating(rng, "nps", polarity),
                "csat": "",
                "stars": "",
                "author": f"emp-{eid:04d}",
            },
        )

    def employee_text(
        self,
        touchpoint: str,
        polarity: Polarity,
        channel: str,
        slots: _Slots,
        story_line: str | None,
    ) -> str:
        rng = self.rng
        longer = channel == "survey"
        main_template = story_line or rng.choice(EMPLOYEE_ASPECTS[touchpoint][polarity])
        sentences = [_fill(main_template, slots)]
        if rng.random() < (0.6 if longer else 0.3):
            other = rng.choice([t for t in EMPLOYEE_ASPECTS if t != "onboarding"])
            extra = _fill(rng.choice(EMPLOYEE_ASPECTS[other][polarity]), slots)
            if extra != sentences[0]:
                sentences.append(extra)
        connect = 1 if len(sentences) > 1 else 0
        if story_line and polarity == "neg" and rng.random() < 0.4:
            sentences.append(_fill(rng.choice(ROTA_FEELINGS), slots))
        elif rng.random() < (0.55 if longer else 0.3):
            sentences.append(rng.choice(EMPLOYEE_FEELINGS[polarity]))
        if rng.random() < (0.35 if longer else 0.15):
            sentences.append(rng.choice(EMPLOYEE_CLOSERS[polarity]))
        text = _join(sentences, rng, polarity, connect)
        while _word_count(text) < 5:
            text = f"{text} {rng.choice(EMPLOYEE_FEELINGS[polarity])}"
        if rng.random() < 0.08:
            text = _roughen(text, rng)
        return text


def generate(
    *, seed: int = 7, customers_per_week: int = 330, employees_per_week: int = 80
) -> list[dict[str, str]]:
    """Return the demo rows, sorted by created_at then external_id, values as written to CSV."""
    generator = _Generator(seed)
    drafts: list[_Draft] = []
    for week in range(N_WEEKS):
        drafts += generator.customer_week(week, customers_per_week)
        drafts += generator.employee_week(week, employees_per_week)
    drafts.sort(key=lambda d: d.when)  # stable: ties keep generation order
    rows: list[dict[str, str]] = []
    for number, draft in enumerate(drafts, start=1):
        row = {
            "external_id": f"nw-{number:06d}",
            "created_at": draft.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **draft.fields,
        }
        rows.append({column: row[column] for column in COLUMNS})
    return rows


def write_csv(
    path: Path,
    *,
    seed: int = 7,
    customers_per_week: int = 330,
    employees_per_week: int = 80,
) -> int:
    """Write the demo CSV (UTF-8, header first) to ``path`` and return the number of rows."""
    rows = generate(
        seed=seed, customers_per_week=customers_per_week, employees_per_week=employees_per_week
    )
    _write_rows(Path(path), rows)
    return len(rows)


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m feedback.demo.generator",
        description="Write the Northwind Home demo feedback CSV.",
    )
    parser.add_argument("out", type=Path, help="CSV file to write (parent folders are created)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers-per-week", type=int, default=330)
    parser.add_argument("--employees-per-week", type=int, default=80)
    args = parser.parse_args(argv)
    rows = generate(
        seed=args.seed,
        customers_per_week=args.customers_per_week,
        employees_per_week=args.employees_per_week,
    )
    path: Path = args.out
    _write_rows(path, rows)
    customers = sum(1 for r in rows if r["audience"] == "customer")
    print(
        f"wrote {len(rows)} rows to {path} ({customers} customer, {len(rows) - customers} "
        f"employee; {WEEKS[0]}..{WEEKS[-1]}; seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
