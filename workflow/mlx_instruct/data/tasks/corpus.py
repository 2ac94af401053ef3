"""Hand-written content: list topics, short factual paragraphs, and how-to procedures.

Written here (not downloaded) so the generator works offline and its reference answers are
natural English a person would accept, while every constraint stays checkable by code.
Entries are '|'-separated strings to keep this data file compact.
"""

from __future__ import annotations

from mlx_instruct.data.tasks.core import wordlist


def _items(text: str) -> list[str]:
    return wordlist(text, "|")


# topic phrase -> short list items (bullet_list references; never the seed's edge computing).
TOPICS: dict[str, list[str]] = {
    "benefits of regular exercise": _items(
        "Stronger heart and lungs|Better sleep at night|Improved mood and less stress|Healthier body weight|More energy during the day|Stronger bones and muscles"
    ),
    "ways to save energy at home": _items(
        "Switch off lights in empty rooms|Use LED light bulbs|Wash clothes in cold water|Unplug chargers when not in use|Seal gaps around windows|Air-dry laundry outside"
    ),
    "tips for learning a new language": _items(
        "Practise a little every day|Label objects around the house|Watch films with subtitles|Speak with native speakers|Keep a vocabulary notebook|Read simple children's books"
    ),
    "everyday uses of a smartphone": _items(
        "Taking photos and videos|Navigating with maps|Sending messages to friends|Paying for purchases|Reading the news|Setting reminders and alarms"
    ),
    "ways to reduce food waste": _items(
        "Plan meals before shopping|Store leftovers in clear containers|Freeze bread before it goes stale|Cook with vegetable scraps|Buy only what you need|Compost what cannot be eaten"
    ),
    "things to pack for a beach trip": _items(
        "Sunscreen|A large towel|A refillable water bottle|Sunglasses|A wide-brimmed hat|Snacks in a cool bag"
    ),
    "qualities of a good teacher": _items(
        "Patience with every learner|Clear explanations|Genuine curiosity|Fairness to all students|Good listening skills|Enthusiasm for the subject"
    ),
    "reasons to visit a museum": _items(
        "Learning about local history|Seeing famous works of art|Enjoying a quiet afternoon|Finding ideas for projects|Attending special exhibitions|Sharing a day out with family"
    ),
    "ways to stay focused while studying": _items(
        "Turn off phone notifications|Study in short timed sessions|Keep a tidy desk|Set a clear goal for each session|Take regular short breaks|Study at the same time each day"
    ),
    "features of a strong password": _items(
        "At least twelve characters|A mix of letters and numbers|Some special symbols|No personal information|Unique for each account|Not a single dictionary word"
    ),
    "ways to be a considerate neighbour": _items(
        "Say hello when you meet|Keep noise down at night|Offer help with heavy shopping|Share extra garden vegetables|Collect their mail during holidays|Return borrowed tools promptly"
    ),
    "benefits of reading books": _items(
        "A larger vocabulary|Better concentration|Lower stress levels|New ideas and perspectives|Improved writing skills|Greater empathy for others"
    ),
    "ways to keep a houseplant healthy": _items(
        "Water only when the soil is dry|Place it in indirect sunlight|Wipe dust off the leaves|Repot it when roots crowd the pot|Feed it in spring and summer|Check the leaves for pests"
    ),
    "safety rules for cycling": _items(
        "Always wear a helmet|Use lights after dark|Signal before turning|Ride with the flow of traffic|Check your brakes before riding|Keep both hands on the handlebars"
    ),
    "uses of cloud storage": _items(
        "Backing up family photos|Sharing large files|Editing documents from any device|Recovering lost files|Collaborating with colleagues|Freeing space on a laptop"
    ),
    "healthy breakfast ideas": _items(
        "Oatmeal with fresh berries|Greek yogurt with nuts|Whole-grain toast with eggs|A banana and peanut butter smoothie|A vegetable omelette|Chia pudding with fruit"
    ),
    "ways to prepare for a job interview": _items(
        "Research the company|Practise common questions|Prepare questions for the interviewer|Plan your route in advance|Choose your clothes the night before|Bring copies of your CV"
    ),
    "common causes of air pollution": _items(
        "Car exhaust fumes|Coal power stations|Factory emissions|Burning of crop waste|Wildfire smoke|Dust from building sites"
    ),
    "advantages of public transport": _items(
        "Lower travel costs|Less traffic congestion|Fewer carbon emissions|Time to read while travelling|No need to find parking|Safer journeys than driving"
    ),
    "habits that improve sleep": _items(
        "Keep a regular bedtime|Avoid caffeine in the evening|Keep the bedroom dark and cool|Put screens away before bed|Get morning sunlight|Exercise earlier in the day"
    ),
    "checks before a long car journey": _items(
        "Tyre pressure|Engine oil level|Windscreen washer fluid|Working headlights|A charged phone|A spare tyre and jack"
    ),
    "ways to reduce stress at work": _items(
        "Take short walks|Break big tasks into steps|Keep a written to-do list|Talk to a trusted colleague|Take your full lunch break|Turn off email alerts after hours"
    ),
    "household uses of baking soda": _items(
        "Raising cakes and muffins|Cleaning ovens|Removing fridge odours|Scrubbing burnt pots|Freshening carpets|Soothing insect bites"
    ),
    "skills every programmer needs": _items(
        "Reading other people's code|Writing clear tests|Using version control|Breaking problems into parts|Debugging methodically|Explaining ideas in writing"
    ),
    "benefits of drinking enough water": _items(
        "Better concentration|Healthy kidneys|Fewer headaches|Regular digestion|Steady body temperature|More energy during exercise"
    ),
    "ways to make a small room feel bigger": _items(
        "Paint the walls a light colour|Hang a large mirror|Use furniture with hidden storage|Keep the floor clear|Choose sheer curtains|Add layered lighting"
    ),
    "features of a good website": _items(
        "Fast loading pages|Clear navigation menus|Readable text|A layout that works on phones|Support for screen readers|Up-to-date contact details"
    ),
    "ways to help wildlife in a garden": _items(
        "Plant native flowers|Dig a small pond|Leave a pile of logs|Put up a bird box|Avoid chemical pesticides|Let one corner grow wild"
    ),
    "tips for saving money on groceries": _items(
        "Shop with a list|Compare unit prices|Buy seasonal produce|Cook larger batches|Choose store brands|Avoid shopping when hungry"
    ),
    "ways to conserve water": _items(
        "Take shorter showers|Fix dripping taps|Turn off the tap while brushing|Run only full dishwasher loads|Water plants in the evening|Collect rainwater for the garden"
    ),
    "main parts of a computer": _items(
        "Processor|Memory|Storage drive|Motherboard|Power supply|Graphics card"
    ),
    "items for a first aid kit": _items(
        "Adhesive bandages|Sterile gauze pads|Medical tape|Antiseptic wipes|Tweezers|Disposable gloves"
    ),
    "ways to keep children safe online": _items(
        "Use parental controls|Keep devices in shared rooms|Talk about strangers online|Set screen-time limits|Review app permissions|Teach them to guard passwords"
    ),
    "types of renewable energy": _items(
        "Solar power|Wind power|Hydroelectric power|Geothermal energy|Tidal energy|Biomass energy"
    ),
    "ways to welcome a new colleague": _items(
        "Introduce them to the team|Invite them to lunch|Share useful documents|Explain team routines|Check in after the first week|Offer to answer questions"
    ),
    "things to do on a rainy day": _items(
        "Bake a batch of cookies|Read a long novel|Play board games|Visit a museum|Watch a documentary|Write letters to friends"
    ),
    "advantages of remote work": _items(
        "No daily commute|Flexible working hours|Fewer office distractions|Lower travel costs|More time with family|Access to jobs in other cities"
    ),
    "ways to make a presentation memorable": _items(
        "Open with a short story|Use one idea per slide|Show clear charts|Practise out loud|Keep to the time limit|End with a clear summary"
    ),
}

# subject (as used in an instruction) -> (keyword, four factual sentences).
FACTS: dict[str, tuple[str, list[str]]] = {
    "honeybees": (
        "honeybees",
        _items(
            "Honeybees live in colonies that can hold tens of thousands of workers.|Honeybees tell each other where flowers are with a waggle dance.|A single honeybee makes only a small spoonful of honey in its life.|Honeybees pollinate many of the fruits and vegetables that people eat."
        ),
    ),
    "the Moon": (
        "Moon",
        _items(
            "The Moon is the only natural satellite of Earth.|The Moon takes about twenty-seven days to orbit Earth.|The pull of the Moon causes most of the ocean tides.|The same side of the Moon always faces Earth."
        ),
    ),
    "volcanoes": (
        "volcanoes",
        _items(
            "Volcanoes form where molten rock reaches the surface.|Many volcanoes lie along the edges of tectonic plates.|Volcanic ash can disrupt air travel far from an eruption.|Some volcanoes stay quiet for centuries before erupting again."
        ),
    ),
    "coral reefs": (
        "reefs",
        _items(
            "Coral reefs are built by tiny animals called polyps.|Coral reefs shelter about a quarter of all marine species.|Warm water can cause corals to bleach and lose their color.|Coral reefs protect coastlines by breaking the force of waves."
        ),
    ),
    "the human heart": (
        "heart",
        _items(
            "The human heart beats about one hundred thousand times a day.|The heart has four chambers that pump blood around the body.|Regular exercise makes the heart muscle stronger.|The heart sends oxygen to every organ through the blood."
        ),
    ),
    "rainforests": (
        "rainforests",
        _items(
            "Rainforests receive heavy rain throughout the year.|Rainforests are home to more than half of the land species on Earth.|Many medicines come from plants that grow in rainforests.|Rainforests store huge amounts of carbon in their trees."
        ),
    ),
    "octopuses": (
        "octopuses",
        _items(
            "Octopuses have eight arms lined with sensitive suckers.|Octopuses can change the color of their skin in a moment.|An octopus has three hearts and blue blood.|Octopuses are famous for solving puzzles and escaping from tanks."
        ),
    ),
    "bicycles": (
        "bicycles",
        _items(
            "Bicycles turn human effort into motion very efficiently.|Riding a bicycle to work reduces traffic and air pollution.|Modern bicycles use gears to make hills easier to climb.|Bicycles need regular chain cleaning and tire checks."
        ),
    ),
    "public libraries": (
        "libraries",
        _items(
            "Public libraries lend books, films and music for free.|Libraries offer quiet rooms for study and reading.|Many libraries run reading programs for young children.|Libraries give people free access to computers and the internet."
        ),
    ),
    "solar panels": (
        "solar",
        _items(
            "Solar panels convert sunlight directly into electricity.|Solar panels work best when they face the sun without shade.|The price of solar panels has fallen sharply in recent years.|Solar panels need little care besides occasional cleaning."
        ),
    ),
    "coffee": (
        "coffee",
        _items(
            "Coffee is brewed from the roasted seeds of the coffee plant.|Coffee contains caffeine, which helps people feel alert.|Brazil grows more coffee than any other country.|Coffee beans lose their flavor quickly once they are ground."
        ),
    ),
    "penguins": (
        "penguins",
        _items(
            "Penguins are birds that cannot fly but swim very well.|Most penguins live in the Southern Hemisphere.|Emperor penguins huddle together to survive the Antarctic winter.|Penguins use their wings as flippers to move through water."
        ),
    ),
    "glaciers": (
        "glaciers",
        _items(
            "Glaciers are large masses of ice that move slowly over land.|Glaciers carve deep valleys as they grind across rock.|Many glaciers are shrinking as the climate warms.|Glaciers hold a large share of the fresh water on Earth."
        ),
    ),
    "sleep": (
        "sleep",
        _items(
            "Sleep helps the brain store memories from the day.|Most adults need between seven and nine hours of sleep.|Bright screens at bedtime can make it harder to fall asleep.|A regular sleep schedule improves mood and focus."
        ),
    ),
    "tea": (
        "tea",
        _items(
            "Tea is made by steeping dried leaves in hot water.|Green tea and black tea come from the same plant.|People in China have enjoyed tea for thousands of years.|Many people drink tea with milk, lemon or honey."
        ),
    ),
    "elephants": (
        "elephants",
        _items(
            "Elephants are the largest animals living on land.|Elephants use their trunks to drink, smell and lift objects.|Elephants live in family groups led by an older female.|Elephants can recognize the calls of friends from far away."
        ),
    ),
    "recycling": (
        "recycling",
        _items(
            "Recycling turns used materials into new products.|Recycling aluminum cans saves most of the energy needed to make new ones.|Clean paper and cardboard are easy to recycle.|Recycling reduces the amount of waste sent to landfills."
        ),
    ),
    "rivers": (
        "rivers",
        _items(
            "Rivers carry fresh water from high ground to the sea.|Rivers shape the land by moving sand and stones downstream.|Many cities grew up beside rivers for trade and water.|Dams on rivers can produce electricity."
        ),
    ),
    "chess": (
        "chess",
        _items(
            "Chess is a strategy game played on a board of sixty-four squares.|Each chess player starts the game with sixteen pieces.|The goal of chess is to checkmate the opposing king.|Chess players often study famous games to improve."
        ),
    ),
    "bread": (
        "bread",
        _items(
            "Bread is made from flour, water, salt and yeast.|Yeast makes bread rise by releasing gas into the dough.|Kneading gives bread dough a strong and springy structure.|Fresh bread tastes best on the day it is baked."
        ),
    ),
    "spiders": (
        "spiders",
        _items(
            "Spiders have eight legs and are not insects.|Spider silk is remarkably strong for its weight.|Most spiders catch insects in webs or by hunting.|Spiders help gardens by eating many pests."
        ),
    ),
    "deserts": (
        "deserts",
        _items(
            "Deserts receive very little rain each year.|Deserts can be hot during the day and cold at night.|Cacti store water in their thick stems to survive in deserts.|Some deserts, such as Antarctica, are covered in ice."
        ),
    ),
    "trains": (
        "trains",
        _items(
            "Trains carry large numbers of people over long distances.|Electric trains produce less pollution per passenger than cars.|High-speed trains can travel faster than three hundred kilometres per hour.|Trains run on steel rails that keep friction low."
        ),
    ),
    "vaccines": (
        "vaccines",
        _items(
            "Vaccines train the immune system to recognize germs.|Vaccines have greatly reduced diseases such as measles and polio.|Some vaccines need booster doses to stay effective.|New vaccines are tested in large trials before approval."
        ),
    ),
    "owls": (
        "owls",
        _items(
            "Owls hunt mostly at night.|Owls can turn their heads much further than people can.|Soft feathers let owls fly almost silently.|Owls swallow small prey whole and later cough up pellets."
        ),
    ),
    "compost": (
        "compost",
        _items(
            "Compost turns kitchen scraps and leaves into rich soil.|Compost needs air, moisture and a mix of green and brown material.|Worms and microbes do most of the work in a compost heap.|Gardeners add compost to help their plants grow."
        ),
    ),
    "lighthouses": (
        "lighthouses",
        _items(
            "Lighthouses guide ships safely along dangerous coasts.|Each lighthouse flashes its light in its own pattern.|Many lighthouses are now automated and need no keeper.|Lighthouses are often built on rocky headlands."
        ),
    ),
    "wind turbines": (
        "turbines",
        _items(
            "Wind turbines turn moving air into electricity.|Wind turbines work best in open places with steady wind.|Offshore wind farms use the strong winds over the sea.|The blades of a large wind turbine can be longer than a jumbo jet's wings."
        ),
    ),
    "sharks": (
        "sharks",
        _items(
            "Sharks have lived in the oceans for hundreds of millions of years.|Sharks replace lost teeth throughout their lives.|Sharks can sense tiny electric fields made by other animals.|Many sharks migrate long distances to feed and breed."
        ),
    ),
    "mountains": (
        "mountains",
        _items(
            "Mountains form when tectonic plates push against each other.|The air high on mountains contains less oxygen.|Mountains often get more rain and snow than nearby lowlands.|Mount Everest is the highest mountain above sea level."
        ),
    ),
    "potatoes": (
        "potatoes",
        _items(
            "Potatoes were first grown in the Andes of South America.|Potatoes are a good source of starch and vitamin C.|Green patches on potatoes should be cut away before cooking.|Potatoes can be boiled, baked, mashed or fried."
        ),
    ),
    "maps": (
        "maps",
        _items(
            "Maps show places and the distances between them.|A map legend explains the symbols used on the map.|Most maps place north at the top.|Digital maps can show traffic information in real time."
        ),
    ),
}

# procedure -> ordered steps (numbered_list references).
PROCESSES: dict[str, list[str]] = {
    "make a cup of tea": _items(
        "Boil fresh water in a kettle.|Put a tea bag in a mug.|Pour the hot water over the tea bag.|Let it steep for three to five minutes.|Remove the bag and add milk if you like."
    ),
    "plant a tree seedling": _items(
        "Choose a sunny spot with room to grow.|Dig a hole twice as wide as the root ball.|Place the seedling in the hole.|Fill the hole with soil and press it down.|Water the seedling thoroughly."
    ),
    "fix a flat bicycle tyre": _items(
        "Remove the wheel from the frame.|Lever the tyre off the rim.|Find the hole in the inner tube.|Patch the hole or fit a new tube.|Refit the tyre and pump it up.|Put the wheel back on the bike."
    ),
    "wash your hands properly": _items(
        "Wet your hands with clean water.|Apply enough soap to cover both hands.|Scrub all surfaces for twenty seconds.|Rinse your hands under running water.|Dry them with a clean towel."
    ),
    "write a formal email": _items(
        "Write a clear subject line.|Greet the recipient by name.|State your purpose in the first sentence.|Add the necessary details briefly.|Close politely and sign with your full name."
    ),
    "make a simple green salad": _items(
        "Wash and dry the lettuce.|Tear the leaves into a large bowl.|Add sliced cucumber and tomatoes.|Whisk oil, vinegar and salt together.|Toss the salad with the dressing."
    ),
    "back up files on a computer": _items(
        "Connect an external drive.|Open the backup settings.|Select the folders to copy.|Start the backup.|Check that the copied files open."
    ),
    "boil an egg": _items(
        "Place the egg in a small pan.|Cover it with cold water.|Bring the water to a boil.|Simmer for seven to nine minutes.|Cool the egg in cold water before peeling."
    ),
    "prepare for a presentation": _items(
        "Learn who the audience is.|Outline the main points.|Build simple slides.|Rehearse out loud twice.|Check the equipment before you start."
    ),
    "clean a laptop screen": _items(
        "Turn off the laptop.|Wipe the screen with a dry microfibre cloth.|Dampen the cloth slightly with water.|Wipe again in gentle circles.|Let the screen dry before opening it."
    ),
    "start a small vegetable garden": _items(
        "Pick a sunny patch of ground.|Clear the weeds and loosen the soil.|Mix in some compost.|Sow seeds or plant seedlings.|Water regularly and pull new weeds."
    ),
    "make pancakes": _items(
        "Whisk flour, eggs and milk into a batter.|Heat a lightly oiled pan.|Pour in a small ladle of batter.|Flip the pancake when bubbles appear.|Cook the other side until golden."
    ),
    "brew coffee with a French press": _items(
        "Boil water and let it cool briefly.|Add coarse ground coffee to the press.|Pour in the hot water and stir.|Wait four minutes.|Press the plunger down slowly and pour."
    ),
    "repot a houseplant": _items(
        "Water the plant a day before.|Ease the plant out of its old pot.|Loosen the roots gently.|Set it in a larger pot with fresh soil.|Water it well."
    ),
    "create a monthly budget": _items(
        "List all sources of income.|Write down your fixed expenses.|Estimate variable costs like food.|Set a savings goal.|Track spending and adjust each month."
    ),
    "wrap a present": _items(
        "Measure enough paper to cover the box.|Place the box face down on the paper.|Fold the paper over and tape it.|Fold the ends into neat triangles.|Finish with a ribbon."
    ),
    "make a paper airplane": _items(
        "Fold a sheet of paper in half lengthwise.|Fold the top corners to the centre line.|Fold the new edges to the centre again.|Fold the plane in half.|Fold down both wings."
    ),
    "check a car's tyre pressure": _items(
        "Find the recommended pressure in the manual.|Remove the valve cap.|Press the gauge onto the valve.|Read the pressure.|Add air if it is too low and replace the cap."
    ),
    "set up a new phone": _items(
        "Charge the phone fully.|Insert the SIM card.|Connect to a Wi-Fi network.|Sign in to your account.|Restore your apps and contacts."
    ),
    "cook plain rice": _items(
        "Rinse the rice until the water runs clear.|Add the rice and water to a pot.|Bring it to a boil.|Cover and simmer on low heat.|Let it rest for five minutes before serving."
    ),
}
