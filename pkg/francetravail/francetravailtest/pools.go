package francetravailtest

// Vocabulary of the synthetic generator. Written for this project: plausible
// French job-offer wording, not taken from any offer.

// romeJob is a ROME code with its label, appellations and a NAF code of a
// typical employer.
type romeJob struct {
	code, libelle string
	appellations  []string
	naf, nafLib   string
}

var romeJobs = []romeJob{
	{"A1203", "Aménagement et entretien des espaces verts", []string{"Jardinier / Jardinière", "Jardinier paysagiste / Jardinière paysagiste"}, "81.30Z", "Services d'aménagement paysager"},
	{"A1414", "Horticulture et maraîchage", []string{"Ouvrier maraîcher / Ouvrière maraîchère"}, "01.13Z", "Culture de légumes, de melons, de racines et de tubercules"},
	{"D1101", "Boucherie", []string{"Boucher / Bouchère", "Boucher-charcutier / Bouchère-charcutière"}, "47.22Z", "Commerce de détail de viandes et de produits à base de viande en magasin spécialisé"},
	{"D1102", "Boulangerie - viennoiserie", []string{"Boulanger / Boulangère", "Boulanger-pâtissier / Boulangère-pâtissière"}, "10.71C", "Boulangerie et boulangerie-pâtisserie"},
	{"D1106", "Vente en alimentation", []string{"Vendeur / Vendeuse en boulangerie-pâtisserie", "Vendeur / Vendeuse en alimentation générale"}, "47.11D", "Supermarchés"},
	{"D1211", "Vente en articles de sport et loisirs", []string{"Vendeur / Vendeuse en articles de sport", "Skiman / Skiwoman"}, "47.64Z", "Commerce de détail d'articles de sport en magasin spécialisé"},
	{"D1214", "Vente en habillement et accessoires de la personne", []string{"Vendeur / Vendeuse en prêt-à-porter"}, "47.71Z", "Commerce de détail d'habillement en magasin spécialisé"},
	{"D1407", "Relation technico-commerciale", []string{"Technico-commercial / Technico-commerciale"}, "46.69B", "Commerce de gros de fournitures et équipements industriels divers"},
	{"D1501", "Animation de vente", []string{"Animateur / Animatrice des ventes"}, "73.11Z", "Activités des agences de publicité"},
	{"D1502", "Management/gestion de rayon produits alimentaires", []string{"Chef de rayon produits alimentaires"}, "47.11F", "Hypermarchés"},
	{"D1507", "Mise en rayon libre-service", []string{"Employé / Employée de libre-service", "Employé / Employée de rayon"}, "47.11F", "Hypermarchés"},
	{"F1603", "Installation d'équipements sanitaires et thermiques", []string{"Plombier chauffagiste / Plombière chauffagiste"}, "43.22A", "Travaux d'installation d'eau et de gaz en tous locaux"},
	{"F1604", "Montage d'agencements", []string{"Menuisier poseur / Menuisière poseuse"}, "43.32A", "Travaux de menuiserie bois et PVC"},
	{"F1606", "Peinture en bâtiment", []string{"Peintre en bâtiment"}, "43.34Z", "Travaux de peinture et vitrerie"},
	{"F1701", "Construction en béton", []string{"Maçon / Maçonne", "Coffreur bancheur / Coffreuse bancheuse"}, "43.99C", "Travaux de maçonnerie générale et gros œuvre de bâtiment"},
	{"F1702", "Construction de routes et voies", []string{"Ouvrier / Ouvrière de voirie"}, "42.11Z", "Construction de routes et autoroutes"},
	{"G1203", "Animation de loisirs auprès d'enfants ou d'adolescents", []string{"Animateur / Animatrice de centre de loisirs"}, "88.91B", "Accueil ou accompagnement sans hébergement d'enfants handicapés"},
	{"G1401", "Assistance de direction d'hôtel-restaurant", []string{"Assistant / Assistante de direction d'hôtel"}, "55.10Z", "Hôtels et hébergement similaire"},
	{"G1501", "Personnel d'étage", []string{"Femme / Valet de chambre", "Gouvernant / Gouvernante d'étage"}, "55.10Z", "Hôtels et hébergement similaire"},
	{"G1503", "Management du personnel d'étage", []string{"Gouvernant / Gouvernante générale"}, "55.10Z", "Hôtels et hébergement similaire"},
	{"G1602", "Personnel de cuisine", []string{"Cuisinier / Cuisinière", "Chef de partie", "Second / Seconde de cuisine"}, "56.10A", "Restauration traditionnelle"},
	{"G1603", "Personnel polyvalent en restauration", []string{"Employé polyvalent / Employée polyvalente de restauration", "Plongeur / Plongeuse en restauration"}, "56.10C", "Restauration de type rapide"},
	{"G1605", "Plonge en restauration", []string{"Plongeur / Plongeuse"}, "56.10A", "Restauration traditionnelle"},
	{"G1609", "Personnel de fabrication", []string{"Commis / Commise de cuisine"}, "56.29A", "Restauration collective sous contrat"},
	{"G1703", "Réception en hôtellerie", []string{"Réceptionniste en hôtellerie"}, "55.10Z", "Hôtels et hébergement similaire"},
	{"G1801", "Café, bar brasserie", []string{"Barman / Barmaid", "Serveur / Serveuse de bar-brasserie"}, "56.30Z", "Débits de boissons"},
	{"G1803", "Service en restauration", []string{"Serveur / Serveuse en restauration", "Chef de rang"}, "56.10A", "Restauration traditionnelle"},
	{"H2102", "Conduite d'équipement de production alimentaire", []string{"Conducteur / Conductrice de ligne de production alimentaire"}, "10.89Z", "Fabrication d'autres produits alimentaires n.c.a."},
	{"H2502", "Management et ingénierie de production", []string{"Responsable de production"}, "28.29B", "Fabrication d'autres machines d'usage général"},
	{"H2903", "Conduite d'équipement d'usinage", []string{"Décolleteur / Décolleteuse", "Régleur / Régleuse sur machine à commande numérique"}, "25.62A", "Décolletage"},
	{"H2909", "Montage-assemblage mécanique", []string{"Monteur / Monteuse en mécanique"}, "28.15Z", "Fabrication d'engrenages et d'organes mécaniques de transmission"},
	{"H3302", "Opérations manuelles d'assemblage, tri ou emballage", []string{"Opérateur / Opératrice de conditionnement"}, "82.92Z", "Activités de conditionnement"},
	{"I1304", "Installation et maintenance d'équipements industriels et d'exploitation", []string{"Technicien / Technicienne de maintenance industrielle"}, "33.12Z", "Réparation de machines et équipements mécaniques"},
	{"I1604", "Mécanique automobile et entretien de véhicules", []string{"Mécanicien / Mécanicienne automobile"}, "45.20A", "Entretien et réparation de véhicules automobiles légers"},
	{"J1301", "Personnel polyvalent des services hospitaliers", []string{"Agent / Agente de service hospitalier"}, "86.10Z", "Activités hospitalières"},
	{"J1501", "Soins d'hygiène, de confort du patient", []string{"Aide-soignant / Aide-soignante"}, "87.10A", "Hébergement médicalisé pour personnes âgées"},
	{"J1506", "Soins infirmiers généralistes", []string{"Infirmier / Infirmière"}, "86.10Z", "Activités hospitalières"},
	{"K1302", "Assistance auprès d'adultes", []string{"Auxiliaire de vie", "Assistant / Assistante de vie aux familles"}, "88.10A", "Aide à domicile"},
	{"K1303", "Assistance auprès d'enfants", []string{"Garde d'enfants à domicile", "Baby-sitter"}, "88.91A", "Accueil de jeunes enfants"},
	{"K1304", "Services domestiques", []string{"Aide ménager / ménagère à domicile"}, "88.10A", "Aide à domicile"},
	{"K2106", "Enseignement des écoles", []string{"Enseignant / Enseignante des écoles"}, "85.20Z", "Enseignement primaire"},
	{"K2107", "Enseignement général du second degré", []string{"Professeur / Professeure de collège", "Enseignant / Enseignante de lycée"}, "85.31Z", "Enseignement secondaire général"},
	{"K2204", "Nettoyage de locaux", []string{"Agent / Agente de propreté", "Agent / Agente d'entretien de locaux"}, "81.21Z", "Nettoyage courant des bâtiments"},
	{"K2501", "Gardiennage de locaux", []string{"Gardien / Gardienne d'immeuble"}, "68.32A", "Administration d'immeubles et autres biens immobiliers"},
	{"M1203", "Comptabilité", []string{"Comptable", "Aide-comptable"}, "69.20Z", "Activités comptables"},
	{"M1602", "Opérations administratives", []string{"Agent administratif / Agente administrative"}, "84.11Z", "Administration publique générale"},
	{"M1607", "Secrétariat", []string{"Secrétaire", "Secrétaire polyvalent / polyvalente"}, "70.10Z", "Activités des sièges sociaux"},
	{"M1805", "Études et développement informatique", []string{"Développeur / Développeuse informatique", "Ingénieur / Ingénieure d'études informatiques"}, "62.01Z", "Programmation informatique"},
	{"M1810", "Production et exploitation de systèmes d'information", []string{"Administrateur / Administratrice systèmes"}, "62.02A", "Conseil en systèmes et logiciels informatiques"},
	{"N1101", "Conduite d'engins de déplacement des charges", []string{"Cariste", "Conducteur / Conductrice de chariot élévateur"}, "52.10B", "Entreposage et stockage non frigorifique"},
	{"N1103", "Magasinage et préparation de commandes", []string{"Préparateur / Préparatrice de commandes", "Magasinier / Magasinière"}, "52.29A", "Messagerie, fret express"},
	{"N4101", "Conduite de transport de marchandises sur longue distance", []string{"Conducteur / Conductrice poids lourd"}, "49.41A", "Transports routiers de fret interurbains"},
	{"N4102", "Conduite de transport de particuliers", []string{"Chauffeur / Chauffeuse de taxi"}, "49.32Z", "Transports de voyageurs par taxis"},
	{"N4105", "Conduite et livraison par tournées sur courte distance", []string{"Chauffeur-livreur / Chauffeuse-livreuse"}, "53.20Z", "Autres activités de poste et de courrier"},
}

var intitulePatterns = []string{"%s (H/F)", "%s H/F", "%s - CDI (H/F)", "%s (F/H)", "%s expérimenté (H/F)", "%s saison d'hiver (H/F)"}

var sentences = []string{
	"Vous rejoignez une équipe dynamique et participez à l'activité quotidienne de l'établissement.",
	"Vous assurez l'accueil des clients et répondez à leurs demandes avec professionnalisme.",
	"Vous veillez au respect des règles d'hygiène et de sécurité en vigueur.",
	"Vous travaillez en autonomie après une période de formation interne.",
	"Vous êtes en charge de la préparation et du suivi des commandes.",
	"Vous participez à l'entretien du matériel et des espaces de travail.",
	"Vous rendez compte de votre activité à votre responsable.",
	"Le poste est à pourvoir dès que possible.",
	"Une première expérience sur un poste similaire est appréciée.",
	"Vous êtes rigoureux, ponctuel et avez le sens du travail en équipe.",
	"Possibilité de logement pour la saison.",
	"Horaires en journée, du lundi au vendredi, avec ponctuellement des samedis.",
	"Rémunération selon profil et convention collective, avec mutuelle et tickets restaurant.",
	"Nous recherchons une personne motivée souhaitant s'investir durablement.",
	"Vous appliquez les procédures qualité et remplissez les documents de suivi.",
	"Le permis B est souhaité, les chantiers étant répartis sur le département.",
	"Vous contribuez à la bonne organisation du service et à la satisfaction de la clientèle.",
	"Formation assurée en interne par nos équipes expérimentées.",
	"Vous maîtrisez les outils bureautiques courants.",
	"Le poste est accessible aux personnes débutantes motivées.",
	"Vous intervenez au domicile de nos bénéficiaires pour les accompagner dans les actes de la vie quotidienne.",
	"Vous réalisez les opérations de contrôle et signalez toute anomalie.",
	"Travail en équipe de deux, en alternance matin et après-midi.",
	"Prime de fin d'année et intéressement après un an d'ancienneté.",
	"Poste évolutif vers des fonctions d'encadrement.",
	"Les candidatures sont étudiées au fil de l'eau.",
	"Notre entreprise familiale est implantée dans la région depuis plus de trente ans.",
	"Vous préparez les plans de travail et organisez les priorités de la journée.",
	"Vous participez aux inventaires et à la réception des marchandises.",
	"Le salaire est à négocier selon votre expérience.",
}

var companyPrefix = []string{"SARL", "SAS", "ETS", "GROUPE", "ATELIERS", "MAISON", "HOTEL", "RESTAURANT", "TRANSPORTS", "CLINIQUE", "SOCIETE", "BOULANGERIE"}
var companyNames = []string{"DU LAC", "DES ALPES", "MARTIN", "BERNARD", "DU MONT BLANC", "LES SAPINS", "PETIT", "DURAND", "LEROY", "DU CENTRE", "DE LA GARE", "DES CIMES", "MOREAU", "FOURNIER", "GIRARD", "DU VAL", "LAMBERT", "BONNET", "ROUX", "DE L'ARVE"}
var companyDescriptions = []string{
	"Entreprise familiale reconnue pour la qualité de ses prestations.",
	"Acteur régional de référence, nous accompagnons nos clients depuis plus de vingt ans.",
	"Agence d'emploi spécialisée dans le recrutement de profils qualifiés pour les entreprises du territoire.",
	"Établissement de santé privé de 120 lits, engagé dans une démarche qualité.",
	"Réseau national de services à la personne présent dans plus de 300 villes.",
}
var partnerNames = []string{"METEOJOB", "COOKORICO", "TALENTPLUG", "PMEJOB", "DISTRIJOB", "ALADOM", "CRECHEMPLOI", "INDEED", "BROADBEAN", "TALENTCOM", "DIRECTEMPLOI", "HELLOWORK"}

var competencesPool = []string{
	"Accueillir une clientèle", "Réaliser des opérations d'entretien", "Appliquer les règles d'hygiène et de sécurité",
	"Préparer les commandes", "Contrôler la conformité des produits", "Renseigner les documents de suivi",
	"Organiser son poste de travail", "Utiliser des outils bureautiques", "Conseiller un client sur un produit",
	"Encaisser un règlement", "Réaliser un inventaire", "Conduire un véhicule utilitaire", "Planifier des interventions",
	"Assurer la traçabilité des opérations", "Adapter sa communication à son interlocuteur", "Respecter un protocole de soin",
	"Régler une machine de production", "Trier et évacuer les déchets", "Mettre en place une salle de restaurant", "Gérer les stocks",
}

var qualitesPool = [][2]string{
	{"Travailler en équipe", "Capacité à coopérer avec ses collègues et à partager l'information utile au collectif."},
	{"Faire preuve de rigueur et de précision", "Capacité à suivre des consignes et des procédures sans erreur, en vérifiant son travail."},
	{"Faire preuve d'autonomie", "Capacité à prendre en charge son activité sans être sous le contrôle constant d'une personne."},
	{"Faire preuve de réactivité", "Capacité à s'adapter rapidement à une situation imprévue et à agir en conséquence."},
	{"Organiser son travail selon les priorités", "Capacité à planifier et hiérarchiser ses tâches en fonction des échéances."},
	{"Être à l'écoute", "Capacité à comprendre les besoins de ses interlocuteurs et à y répondre avec bienveillance."},
	{"Avoir le sens du service", "Capacité à rechercher la satisfaction de la personne servie."},
}

var qualificationLibelles = map[byte]string{
	'1': "Manœuvre", '2': "Ouvrier spécialisé", '3': "Ouvrier qualifié (P1,P2)", '4': "Ouvrier qualifié (P3,P4,OHQ)",
	'5': "Employé non qualifié", '6': "Employé qualifié", '7': "Technicien", '8': "Agent de maîtrise", '9': "Cadre",
}

var syllables = []string{"mon", "val", "ber", "cha", "lan", "ri", "vil", "ton", "gny", "sal", "mor", "ve", "sey", "cru", "lo", "bel", "gar", "ni", "thon", "fa"}

var horairesPool = []string{"35H/semaine\nTravail en journée", "39H/semaine\nTravail en journée", "Temps plein",
	"35H/semaine\nTravail les week-ends et jours fériés", "Temps partiel - 24H/semaine\nTravail en journée", "35H/semaine\nTravail saisonnier"}

var deplacements = []string{"Jamais", "Quotidiens", "Fréquents", "Ponctuels"}
var langues = []string{"Anglais", "Allemand", "Italien", "Espagnol"}
var permisPool = []string{"B - Véhicule léger", "C - Poids lourd", "BE - Véhicule léger attelé"}
var niveaux = []string{"CAP, BEP et équivalents", "Bac ou équivalent", "Bac+2 ou équivalents", "Bac+3, Bac+4 ou équivalents", "Bac+5 et plus ou équivalents"}
