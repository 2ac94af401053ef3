"""Built-in held-out generic prompts for the retention (self-replay) mix.

Open-ended general knowledge, explanation, writing, advice and reasoning prompts, written
for this project, beside the vendored Self-Instruct seed tasks. Deliberately unlike
the verifiable task families (no "list N", JSON, counts, sorting, arithmetic, unit or date
conversion, word or sentence limits, case changes): replaying the base model's answers to
these keeps its general behaviour, not its behaviour on the tuned tasks.
"""

from __future__ import annotations

_TEXT = """
Explain why the sky looks blue during the day but red at sunset.
Describe how a bill becomes a law in a parliamentary democracy.
What causes the seasons on Earth?
Explain the difference between weather and climate.
How do vaccines train the immune system?
Why do we have leap years?
Describe the water cycle in your own words.
What is the role of mitochondria in a cell?
Explain how a refrigerator keeps food cold.
How does a bicycle stay upright while it is moving?
Why does bread rise when it is baked?
Explain what inflation is and why it matters to households.
What is the difference between a virus and a bacterium?
Describe how tides are caused by the Moon.
Why do some metals rust while others do not?
Explain what a supply chain is, using a cup of coffee as the example.
How do bees communicate the location of flowers to each other?
What makes a rainbow appear after rain?
Explain the idea of opportunity cost with an everyday example.
How does a compass work?
Describe what happens in the body during a fever.
What is photosynthesis and why is it important for life on Earth?
Explain how interest on a savings account grows over time.
Why do cats purr?
What is the greenhouse effect?
Explain how sound travels through air.
Describe the main causes of the French Revolution.
What was the significance of the printing press in European history?
Describe daily life in ancient Rome for an ordinary citizen.
Why did the Silk Road matter for trade between East and West?
Explain what the Industrial Revolution changed about how people worked.
What were the main goals of the space race?
Describe the role of the Nile in the civilisation of ancient Egypt.
How did the invention of the telegraph change communication?
What is the purpose of a constitution?
Describe the history of the Olympic Games in a short paragraph.
Write a short story about a lighthouse keeper who finds a message in a bottle.
Write a poem about the first snowfall of winter.
Write a friendly email inviting a neighbour to a community garden day.
Write a thank-you note to a teacher who made a difference.
Compose a short speech for the opening of a small public library.
Write a product description for a handmade wooden chess set.
Write a diary entry from the perspective of a cat on a rainy day.
Write the opening paragraph of a mystery novel set in a mountain village.
Write a short dialogue between a robot and a child about friendship.
Write a review of an imaginary restaurant that serves only soup.
Write a motivational message for someone starting a new job.
Write a limerick about a forgetful wizard.
Describe a bustling market in the morning using vivid sensory details.
Write a letter to your future self ten years from now.
Write a short fable that teaches the value of patience.
Write an apology message for missing a friend's birthday party.
Draft a short announcement that the office will close early on Friday.
Write a persuasive paragraph encouraging people to use public transport.
Write a bedtime story about a brave little turtle.
Describe the feeling of finishing a long hike at the top of a hill.
How can I improve my concentration while studying?
What are good ways to start a conversation with someone new at a party?
How should I prepare for a job interview?
Give me advice on keeping houseplants alive.
How can a beginner start learning to cook at home?
What should I consider when choosing a first pet?
How do I politely decline an invitation?
What are healthy habits for better sleep?
How can I make a small apartment feel more spacious?
Suggest ways to reduce food waste at home.
How can I become a better listener?
What is a good way to plan a weekend trip on a budget?
How should someone handle a disagreement with a coworker?
How can I stay motivated when learning a new language?
What should I do if I feel overwhelmed by my to-do list?
Give advice to someone who wants to start running.
How can parents encourage children to read more?
What is the best way to give constructive feedback?
How can I make my presentations more engaging?
How do I start saving money for the first time?
If all roses are flowers and some flowers fade quickly, can we conclude that some roses fade quickly? Explain your reasoning.
A farmer has to cross a river with a wolf, a goat and a cabbage. How can he get everything across safely?
Why is it a mistake to assume that correlation implies causation? Give an example.
What is the difference between deductive and inductive reasoning?
Explain the prisoner's dilemma and why it is interesting.
Why might a more expensive product sometimes be the cheaper choice in the long run?
A town must choose between building a park and a parking garage. What factors should it weigh?
What are the strengths and weaknesses of learning from trial and error?
Explain why a ship made of steel can float.
What would happen to daily life if the internet disappeared for a week?
Why do people often overestimate how much they will get done in a day?
Is it better to be a generalist or a specialist? Discuss both sides.
What are the trade-offs between living in a city and in the countryside?
Explain why diversifying investments reduces risk.
Why do some species become invasive when moved to a new habitat?
How would you decide which of two job offers to accept?
Compare electric cars and petrol cars in terms of their environmental impact.
Compare reading a book with listening to the audiobook version.
What are the differences between a democracy and a monarchy?
Compare the roles of a manager and a leader.
How is a crocodile different from an alligator?
Compare working from home with working in an office.
What distinguishes a novel from a short story?
Compare tea and coffee as morning drinks.
How do renewable and non-renewable energy sources differ?
Explain the difference between empathy and sympathy.
What is machine learning, explained for someone with no technical background?
How does a search engine decide which pages to show first?
Explain what encryption is and why it protects our messages.
What is cloud computing?
How does GPS determine your location?
Explain what an algorithm is using a recipe as an analogy.
Why do computers use binary numbers?
What is the difference between hardware and software?
How do noise-cancelling headphones work?
What is a database and what is it used for?
Explain how a touchscreen detects your finger.
What does a computer's operating system do?
Why is it important to back up your files?
Describe how email gets from one person to another.
What is open-source software?
Explain how solar panels turn sunlight into electricity.
Why is biodiversity important?
How do forests help fight climate change?
What can cities do to adapt to hotter summers?
Explain why coral reefs are in danger.
How does recycling paper save resources?
What is composting and how does it work?
Why are bees important for agriculture?
Describe the life cycle of a butterfly.
How do migratory birds find their way?
Why do leaves change colour in autumn?
What are the main functions of the human heart?
Explain why regular exercise is good for mental health.
What is the difference between a calorie and a nutrient?
Why is drinking enough water important?
How does the brain form memories?
Explain what a balanced diet means.
What happens to your body when you do not get enough sleep?
Why is handwashing so effective at preventing illness?
What is the role of a referee in a football match?
Explain the basic rules of chess to a beginner.
Why are team sports good for children?
Describe what makes a good coach.
What is the history of the marathon race?
Explain the appeal of board games in the digital age.
What makes a piece of music memorable?
Describe the role of museums in society.
Why do people enjoy scary movies?
What makes a good photograph?
Explain why storytelling is important in human cultures.
How has social media changed the way people share news?
What is the purpose of art?
Describe a traditional festival from any culture and its meaning.
Why do languages change over time?
Explain the difference between a dialect and a language.
What are the benefits of learning a musical instrument?
How does a library decide which books to buy?
What makes a city pleasant to walk in?
How does a bank decide whether to give someone a loan?
What is the difference between a need and a want?
Explain how a small business can attract its first customers.
Why do prices of airline tickets change so often?
What is a budget and why is it useful?
Explain what entrepreneurship means.
What is the role of a central bank?
Why do companies advertise?
What qualities make a good friend?
How can communities support elderly neighbours?
What does it mean to be a responsible citizen?
Why is volunteering valuable for the volunteer as well as others?
How can schools help students who feel lonely?
What are the benefits of having a daily routine?
Why is it hard to break a habit, and what helps?
How can someone build confidence in public speaking?
What is critical thinking and how can it be practised?
Why do people procrastinate?
Explain the concept of a growth mindset.
Describe an ideal day off.
If you could have dinner with any historical figure, who would it be and why?
Imagine a city in the year 2100. What might transportation look like?
What would you pack for a week-long camping trip and why?
Describe how you would explain snow to someone from a tropical island.
What advice would you give to your younger self?
If animals could talk, which one would have the most interesting stories?
Invent a new holiday and describe how people would celebrate it.
Describe a piece of technology you wish existed.
Imagine you are a tour guide in your hometown. What would you show visitors?
What would a perfect school look like?
Describe the smell and sounds of a forest after rain.
What makes a good neighbourhood?
Why do we dream?
What is the difference between a comet and an asteroid?
Why does the Moon have phases?
Explain what a black hole is.
How do astronauts live and sleep on a space station?
Why is Mars called the red planet?
What would it take for humans to live on another planet?
How do volcanoes form?
What causes earthquakes?
Explain how glaciers shape valleys.
Why is the ocean salty?
How are clouds formed?
What causes thunder and lightning?
Describe how a river changes from its source to the sea.
Why are deserts hot during the day and cold at night?
"""

GENERIC_PROMPTS: tuple[str, ...] = tuple(
    line.strip() for line in _TEXT.strip().splitlines() if line.strip()
)
