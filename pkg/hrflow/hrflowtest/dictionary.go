package hrflowtest

// dictionary is what the emulator's text parsing recognises, by label:
// common French and English terms of job offers. A term belongs to one
// label only.
var dictionary = map[string][]string{
	"skill_hard": {
		"excel", "word", "powerpoint", "outlook", "pack office", "microsoft office", "suite office",
		"sap", "sql", "python", "java", "javascript", "typescript", "html", "css", "php", "c++",
		"linux", "windows", "autocad", "solidworks", "photoshop", "erp", "crm", "ged",
		"comptabilité", "comptabilité générale", "facturation", "paie", "gestion de stock", "gestion des stocks",
		"soudure", "soudage", "maçonnerie", "plomberie", "électricité", "électrotechnique", "mécanique",
		"hydraulique", "pneumatique", "usinage", "tournage", "fraisage", "chaudronnerie", "menuiserie",
		"carrelage", "plâtrerie", "peinture en bâtiment", "cuisine traditionnelle", "pâtisserie", "boulangerie",
		"service en salle", "encaissement", "merchandising", "techniques de vente", "négociation", "prospection",
		"marketing digital", "logistique", "manutention", "conduite de chariot élévateur", "préparation de commandes",
		"secrétariat", "saisie de données", "standard téléphonique", "gestion administrative", "ressources humaines",
		"recrutement", "entretien des locaux", "espaces verts", "soins infirmiers", "aide à la personne",
		"accounting", "bookkeeping", "welding", "plumbing", "customer service", "data entry", "project management",
		"machine learning", "data analysis", "inventory management", "forklift operation",
	},
	"skill_soft": {
		"autonomie", "autonome", "rigueur", "rigoureux", "rigoureuse", "polyvalence", "polyvalent", "polyvalente",
		"réactivité", "réactif", "réactive", "curiosité", "curieux", "curieuse", "ponctualité", "ponctuel", "ponctuelle",
		"dynamisme", "dynamique", "sens de l'organisation", "sens du service", "sens du contact",
		"sens des responsabilités", "esprit d'équipe", "travail en équipe", "capacité d'adaptation", "adaptabilité",
		"aisance relationnelle", "aisance téléphonique", "esprit d'initiative", "organisé", "organisée",
		"motivation", "motivé", "motivée", "patience", "bienveillance", "écoute", "discrétion", "créativité",
		"leadership", "teamwork", "team spirit", "autonomy", "adaptability", "communication skills",
		"problem solving", "time management", "attention to detail", "reliability",
	},
	"language": {
		"anglais", "français", "allemand", "espagnol", "italien", "portugais", "arabe", "chinois", "russe",
		"néerlandais", "japonais", "english", "french", "german", "spanish", "italian", "portuguese", "arabic",
		"chinese", "russian", "dutch", "japanese",
	},
	"certification": {
		"permis b", "permis c", "permis ce", "permis c1", "permis d", "permis be", "permis poids lourd",
		"caces", "caces 1", "caces 3", "caces 5", "caces r489", "habilitation électrique", "sst",
		"sauveteur secouriste du travail", "haccp", "bafa", "fimo", "fco", "toeic", "toefl",
		"driving licence", "driving license", "driver's license", "first aid certificate",
	},
	"course": {
		"bac", "bac +2", "bac+2", "bac +3", "bac+3", "bac +5", "bac+5", "bac pro", "bts", "dut", "cap", "bep",
		"licence", "licence professionnelle", "master", "doctorat", "brevet professionnel", "bachelor", "mba", "phd",
	},
	"task": {
		"accueillir les clients", "accueillir les visiteurs", "accueil des clients", "accueil physique",
		"gestion du courrier", "tenue de caisse", "mise en rayon", "mettre en rayon", "réceptionner les marchandises",
		"réception des marchandises", "entretenir les locaux", "préparer les repas", "servir les clients",
		"conseiller les clients", "conseil client", "planifier les rendez-vous", "rédiger des devis",
		"faire des devis", "trier le courrier", "effectuer l'archivage", "answer phone calls",
		"manage inventory", "serve customers",
	},
	"job_title": {
		"assistant administratif", "assistante administrative", "secrétaire", "comptable", "vendeur", "vendeuse",
		"serveur", "serveuse", "cuisinier", "cuisinière", "commis de cuisine", "plongeur", "plongeuse", "boulanger",
		"pâtissier", "boucher", "caissier", "caissière", "agent d'entretien", "agent de nettoyage", "aide-soignant",
		"aide-soignante", "infirmier", "infirmière", "auxiliaire de vie", "électricien", "plombier", "maçon",
		"menuisier", "chauffeur", "livreur", "cariste", "magasinier", "préparateur de commandes",
		"technicien de maintenance", "mécanicien", "soudeur", "conducteur de travaux", "chef de chantier",
		"chef de rang", "chef de partie", "ingénieur", "développeur", "réceptionniste", "femme de chambre",
		"valet de chambre", "animateur", "moniteur de ski", "software engineer", "sales representative",
		"accountant", "nurse", "waiter", "waitress", "receptionist",
	},
	"location": {
		"annecy", "chamonix", "chamonix-mont-blanc", "thonon-les-bains", "évian-les-bains", "annemasse", "cluses",
		"sallanches", "megève", "combloux", "morzine", "haute-savoie", "savoie", "genève", "lyon", "paris",
		"marseille", "toulouse", "grenoble", "chambéry", "bordeaux", "lille", "nantes", "strasbourg",
		"montpellier", "rennes", "france", "suisse", "switzerland", "geneva", "london",
	},
}
