//! Name and street lists for synthetic identities. Common given names and surnames are
//! facts about a population, written here by hand; no list was copied from a source.

/// Female given names.
pub const FEMALE: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Mia", "Poppy", "Ella", "Lily", "Evie",
    "Jessica", "Chloe", "Sophia", "Isabella", "Ruby", "Charlotte", "Hannah", "Lucy", "Emma", "Sarah",
    "Rebecca", "Laura", "Rachel", "Claire", "Karen", "Susan", "Julie", "Helen", "Joanne", "Nicola", "Lisa",
    "Margaret", "Patricia", "Jean", "Barbara", "Christine", "Linda", "Elizabeth", "Mary", "Dorothy", "Joan",
    "Fatima", "Aisha", "Priya", "Amira", "Zara", "Maryam", "Ayesha", "Anita", "Sunita", "Grace", "Abena",
    "Chiamaka", "Ngozi", "Agnieszka", "Katarzyna", "Ioana", "Mei", "Ling",
];

/// Male given names.
pub const MALE: &[&str] = &[
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar", "Charlie", "Jacob",
    "Thomas", "Henry", "William", "James", "Joshua", "Daniel", "Samuel", "Matthew", "Ryan", "Liam",
    "David", "Paul", "Mark", "Andrew", "Richard", "Stephen", "Michael", "Peter", "John", "Robert", "Kevin",
    "Gary", "Ian", "Brian", "Kenneth", "Derek", "Ronald", "Alan", "Keith", "Colin", "Trevor", "Raymond",
    "Ali", "Hassan", "Imran", "Arjun", "Rajesh", "Sanjay", "Bilal", "Omar", "Kwame", "Chinedu", "Tunde",
    "Marcus", "Delroy", "Piotr", "Tomasz", "Andrei", "Wei", "Jun",
];

/// Family names.
pub const FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke",
    "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell", "Rose", "Davis", "Rodgers",
    "Marshall", "Shaw", "Turner", "Hill", "Cooper", "Ward", "Morris", "Moore", "Harris", "Martin",
    "Baker", "Allen", "King", "Harrison", "Morgan", "Scott", "Young", "Parker", "Bennett", "Hughes",
    "Edwards", "Price", "Cox", "Webb", "Chapman", "Barker", "Hussain", "Ahmed", "Begum", "Akhtar",
    "Singh", "Kaur", "Sharma", "Okafor", "Mensah", "Campbell", "Francis", "Nowak", "Kowalski", "Popescu",
    "Chen", "Wang", "Pearson", "Holmes", "Bradley", "Gibson", "Fletcher", "Atkinson", "Stevenson",
];

/// Streets.
pub const STREETS: &[&str] = &[
    "Church Street", "Station Road", "Main Street", "Park Road", "Victoria Road", "High Street",
    "Mill Lane", "School Lane", "The Green", "Queens Road", "Kings Road", "Manor Road", "Chapel Street",
    "Derby Road", "Mansfield Road", "Woodland Drive", "Forest Road", "Sherwood Rise", "Trent Boulevard",
    "Meadow Lane", "Castle Road", "Orchard Close", "Springfield Avenue", "Windsor Crescent",
];
