"""The demo data's vocabulary: the reference day, sizes per scale, categories and their
shares, names, HubSpot owner ids and property values, and the random stream of each part."""

from __future__ import annotations

from datetime import date

REFERENCE_DATE = date(2026, 11, 1)
"""The fixed "today" of the demo data: renewals, deals and usage are placed around it."""

ACCOUNTS_PER_SCALE = 10_000
DEALS_PER_SCALE = 50_000
CONTACTS_PER_SCALE = 30_000

SEGMENTS = ("enterprise", "mid-market", "smb")
SEGMENT_SHARES = (0.15, 0.35, 0.50)
HEALTH_STATUSES = ("Healthy", "Neutral", "At-Risk", "Churned")
HEALTH_SHARES = (0.50, 0.30, 0.15, 0.05)
# Inclusive health_score range of each status: >=70 Healthy, 50-69 Neutral, 25-49 At-Risk.
HEALTH_SCORE_RANGES = ((70, 100), (50, 69), (25, 49), (0, 24))
# ARR range (dollars) and median of each segment.
ARR_RANGES = ((100_000, 1_500_000, 350_000), (20_000, 200_000, 60_000), (2_000, 30_000, 8_000))
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
PLANS = ("starter", "growth", "enterprise")
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
    "Energy",
    "Telecommunications",
    "Hospitality",
    "Real Estate",
)
CSM_EMAILS = (
    "olivia.bennett@example.com",
    "liam.carter@example.com",
    "sophia.nguyen@example.com",
    "noah.patel@example.com",
    "emma.rossi@example.com",
    "lucas.schmidt@example.com",
    "ava.tanaka@example.com",
    "ethan.brooks@example.com",
    "mia.fernandez@example.com",
    "mason.okafor@example.com",
    "isabella.kowalski@example.com",
    "logan.dubois@example.com",
)
# HubSpot owner ids: the CSMs own the accounts (and their renewals and expansions), the
# account executives own new business.
CSM_OWNER_IDS = tuple(81_000_001 + i for i in range(len(CSM_EMAILS)))
AE_OWNER_IDS = tuple(82_000_001 + i for i in range(6))
TICKET_PRIORITIES = ("low", "medium", "high", "urgent")
TICKET_STATUSES = ("open", "pending", "closed")
USAGE_MONTHS = tuple(date(2026, month, 1) for month in range(5, 11))

DEAL_KINDS = ("New business", "Renewal", "Expansion")
DEAL_TYPES = ("newbusiness", "existingbusiness", "existingbusiness")
OPEN_DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)
DEAL_STAGES = (*OPEN_DEAL_STAGES, "closedwon", "closedlost")
CONTACT_LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)

# fmt: off
NAME_PREFIXES = (
    "Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
    "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Aperture", "Blue Harbor", "Silver Peak",
    "Red Rock", "Green Valley", "Iron Bridge", "Golden Gate", "Summit", "Pinnacle", "Apex",
    "Vertex", "Horizon", "Evergreen", "Lighthouse", "Keystone", "Cornerstone", "Bluebird",
    "Falcon", "Eagle", "Orion", "Polaris", "Atlas", "Titan", "Nimbus", "Cascade", "Redwood",
    "Maple", "Cedar", "Willow", "Aspen", "Sequoia", "Granite", "Quartz", "Cobalt", "Crimson",
    "Indigo", "Amber", "Ivory", "Onyx", "Sapphire", "Emerald", "Juniper", "Meridian", "Zenith",
    "Nova", "Stellar", "Lunar", "Solaris", "Quantum", "Vector", "Matrix", "Nexus", "Fusion",
    "Catalyst", "Momentum", "Velocity", "Kinetic", "Brightline", "Clearwater", "Stonebridge",
    "Riverside", "Lakeshore", "Highland", "Prairie", "Harbor", "Coastal", "Northstar",
    "Southpoint", "Eastgate", "Westfield", "Oakridge", "Pinecrest", "Fairview", "Brookside",
    "Sunrise", "Twin Oaks", "Blackstone", "Whitestone", "Greystone", "Copperleaf", "Ironwood",
    "Driftwood", "Starlight", "Moonstone", "Bright Path", "Open Field", "True North",
)
NAME_NOUNS = (
    "Analytics", "Systems", "Logistics", "Health", "Foods", "Software", "Labs", "Dynamics",
    "Networks", "Solutions", "Technologies", "Energy", "Capital", "Media", "Robotics",
    "Consulting", "Manufacturing", "Retail", "Security", "Cloud", "Data", "Devices", "Motors",
    "Pharma", "Biotech", "Insurance", "Finance", "Learning", "Studios", "Telecom", "Travel",
    "Hospitality", "Properties", "Industries", "Ventures", "Works", "Supply", "Design",
    "Engineering", "Instruments", "Materials", "Outfitters", "Brands", "Interactive", "Payments",
    "Marketing", "Partners", "Holdings", "Services", "Group",
)
NAME_SUFFIXES = (
    "", "Inc", "Corp", "LLC", "Co", "Ltd", "International", "Global",
)
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Steven", "Ashley", "Paul", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin",
    "Melissa", "Brian", "Stephanie", "Priya", "Wei", "Yuki", "Carlos", "Fatima", "Ahmed", "Ingrid",
    "Lars", "Chiara", "Mateo", "Aisha", "Kenji", "Sofia", "Omar", "Elena", "Raj", "Hana", "Diego",
    "Zara", "Tomas",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Chen", "Kim", "Singh", "Khan", "Mueller", "Schneider",
    "Rossi", "Bianchi", "Dubois", "Lefebvre", "Tanaka", "Suzuki", "Kowalski", "Novak", "Larsen",
    "Johansson", "Okafor", "Mensah", "Silva", "Costa",
)
JOB_TITLES = (
    "CEO", "CFO", "CTO", "VP of Sales", "VP of Marketing", "Head of Operations",
    "Director of Engineering", "Data Analyst", "Product Manager", "Sales Manager",
    "Account Executive", "Marketing Manager", "Customer Success Manager", "IT Director",
    "Procurement Manager", "Software Engineer", "Operations Analyst", "RevOps Manager",
)
# fmt: on
FREE_EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me")

# Random streams: one per generated part, so that parts stay identical when others change.
STREAM_ACCOUNTS = 1
STREAM_USAGE = 2
STREAM_TICKETS = 3
STREAM_COMPANIES = 10
STREAM_DEALS = 11
STREAM_CONTACTS = 12

EPOCH = date(1970, 1, 1)
REF_DAY = (REFERENCE_DATE - EPOCH).days
US_PER_DAY = 86_400_000_000
US_PER_SECOND = 1_000_000
